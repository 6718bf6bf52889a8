import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "painsite.settings")
# A web process runs one short forward pass per assessment, from whichever request thread has the
# request; each thread has its own OpenMP team, whose idle workers would otherwise spin for a
# while after every pass and take the cores from the next one (3-4x slower assessments on a
# 2-core machine, bench/assess.py). Must be set before torch loads; workers keep the default.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
application = get_wsgi_application()
