import gc
import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "painsite.settings")
# A web process runs one short forward pass per assessment, from whichever request thread has the
# request; each thread has its own OpenMP team, whose idle workers would otherwise spin for a
# while after every pass and take the cores from the next one (3-4x slower assessments on a
# 2-core machine, bench/assess.py). Must be set before torch loads; workers keep the default.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
application = get_wsgi_application()

# Import every view module now rather than in a user's first request, then take everything loaded
# so far (Django, DRF, PyTorch, scikit-learn: some 480,000 objects) out of the garbage collector's
# reach. Otherwise each full collection walks them all, 0.2-0.3 s inside some unlucky request;
# with gunicorn --preload the forked workers also keep sharing those pages.
get_resolver().url_patterns  # noqa: B018 - the access imports every view module
gc.freeze()
