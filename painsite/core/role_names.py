"""The role names alone, importable before Django's apps are loaded (settings.py checks them).

clinician < researcher < admin; painsite.core.roles gives each its permissions.
"""

CLINICIAN = "clinician"
RESEARCHER = "researcher"
ADMIN = "admin"
ROLES = (CLINICIAN, RESEARCHER, ADMIN)
