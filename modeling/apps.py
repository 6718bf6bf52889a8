from django.apps import AppConfig


class ModelingConfig(AppConfig):
    name = "modeling"
    verbose_name = "Modeling (training runs, model versions, assessments)"

    def ready(self) -> None:
        from modeling import feature_backlog

        feature_backlog.connect()
