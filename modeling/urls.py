from modeling.urls_assessment import urlpatterns as assessment_urlpatterns
from modeling.urls_fhir import urlpatterns as fhir_urlpatterns
from modeling.urls_patients import urlpatterns as patient_urlpatterns
from modeling.urls_results import urlpatterns as results_urlpatterns
from modeling.urls_training import urlpatterns as training_urlpatterns
from modeling.urls_ward import urlpatterns as ward_urlpatterns

urlpatterns = [*training_urlpatterns, *results_urlpatterns, *assessment_urlpatterns, *patient_urlpatterns]
urlpatterns += fhir_urlpatterns
urlpatterns += ward_urlpatterns
