from annotation.urls_images import urlpatterns as image_urlpatterns
from annotation.urls_labeling import urlpatterns as labeling_urlpatterns

urlpatterns = [*image_urlpatterns, *labeling_urlpatterns]
