"""Sign-in with the hospital directory, against a real OpenLDAP server (slapd) started per test.

Without slapd, ldap-utils or requirements-ldap.txt these tests are skipped with the reason, unless
PAINSITE_REQUIRE_LDAP=1 (set by CI), which turns the skip into a failure. `make test` installs them.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from rest_framework.authtoken.models import Token

from painsite.core.models import AuditEvent
from painsite.core.roles import ADMIN, CLINICIAN, RESEARCHER, role_of
from tests.conftest import PASSWORD, api_client_for

ROOT = Path(__file__).resolve().parent.parent.parent
SBIN = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])


def _missing() -> str | None:
    if importlib.util.find_spec("django_auth_ldap") is None or importlib.util.find_spec("ldap") is None:
        return (
            "django-auth-ldap / python-ldap are not installed (pip install -r requirements-ldap.txt; `make test` does)"
        )
    for program in ("slapd", "ldapadd", "ldapmodify"):
        if shutil.which(program, path=SBIN) is None:
            return f"{program} is not installed (apt-get install slapd ldap-utils; `make test` does)"
    return None


if reason := _missing():
    if os.environ.get("PAINSITE_REQUIRE_LDAP") == "1":
        pytest.fail(reason + " and PAINSITE_REQUIRE_LDAP=1 forbids skipping the directory tests", pytrace=False)
    pytest.skip(reason, allow_module_level=True)

pytestmark = pytest.mark.django_db

SUFFIX = "dc=example,dc=org"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PASSWORD = "directory-root-secret"
CLINICIANS = f"cn=pain-clinicians,ou=groups,{SUFFIX}"
RESEARCHERS = f"cn=pain-researchers,ou=groups,{SUFFIX}"
ADMINS = f"cn=pain-admins,ou=groups,{SUFFIX}"
DIRECTORY_PASSWORD = "ward-7-directory-password"

SLAPD_CONF = """\
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile {folder}/slapd.pid
database mdb
maxsize 10485760
suffix "{suffix}"
rootdn "{root_dn}"
rootpw {root_password}
directory {folder}/data
"""


def person(uid: str, given: str, family: str) -> str:
    return (
        f"dn: uid={uid},ou=people,{SUFFIX}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {given} {family}\n"
        f"givenName: {given}\nsn: {family}\nmail: {uid}@hospital.example.org\nuserPassword: {DIRECTORY_PASSWORD}\n"
    )


def group(dn: str, *uids: str) -> str:
    name = dn.split(",")[0].split("=")[1]
    # groupOfNames needs a member: a placeholder keeps a group whose last person is taken out.
    members = "".join(f"member: uid={uid},ou=people,{SUFFIX}\n" for uid in uids) + f"member: cn=nobody,{SUFFIX}\n"
    return f"dn: {dn}\nobjectClass: groupOfNames\ncn: {name}\n{members}"


DIRECTORY = "\n".join(
    [
        f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example Hospital\n",
        f"dn: ou=people,{SUFFIX}\nobjectClass: organizationalUnit\nou: people\n",
        f"dn: ou=groups,{SUFFIX}\nobjectClass: organizationalUnit\nou: groups\n",
        person("dora", "Dora", "Nurse"),
        person("ravi", "Ravi", "Research"),
        person("ines", "Ines", "Informatics"),
        person("kurt", "Kurt", "Kitchen"),
        person("ada", "Ada", "Namesake"),
        group(CLINICIANS, "dora", "ravi"),
        group(RESEARCHERS, "ravi"),
        group(ADMINS, "ines"),
        group(f"cn=kitchen,ou=groups,{SUFFIX}", "kurt"),
    ]
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Directory:
    uri: str

    def modify(self, ldif: str) -> None:
        result = subprocess.run(
            [shutil.which("ldapmodify", path=SBIN), "-x", "-H", self.uri, "-D", ROOT_DN, "-w", ROOT_PASSWORD],
            input=ldif,
            text=True,
            capture_output=True,
        )
        assert result.returncode == 0, result.stderr

    def remove_member(self, group_dn: str, uid: str) -> None:
        self.modify(f"dn: {group_dn}\nchangetype: modify\ndelete: member\nmember: uid={uid},ou=people,{SUFFIX}\n")

    def add_member(self, group_dn: str, uid: str) -> None:
        self.modify(f"dn: {group_dn}\nchangetype: modify\nadd: member\nmember: uid={uid},ou=people,{SUFFIX}\n")


def start_slapd(config: Path) -> tuple[subprocess.Popen, str]:
    """slapd on a free port, loaded with DIRECTORY. Test processes run side by side: a port taken
    between choosing and binding it makes slapd exit, and another port is tried."""
    output = stderr = ""
    for _ in range(3):
        uri = f"ldap://127.0.0.1:{free_port()}/"
        # -d 0: stay in the foreground, so the server is this test's child and stops with it.
        server = subprocess.Popen(
            [shutil.which("slapd", path=SBIN), "-f", str(config), "-h", uri, "-d", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + 20
        while server.poll() is None and time.monotonic() < deadline:
            loaded = subprocess.run(
                [shutil.which("ldapadd", path=SBIN), "-x", "-H", uri, "-D", ROOT_DN, "-w", ROOT_PASSWORD],
                input=DIRECTORY,
                text=True,
                capture_output=True,
            )
            if loaded.returncode == 0:
                return server, uri
            stderr = loaded.stderr
            time.sleep(0.1)
        server.kill()
        output = server.communicate()[0]
    pytest.fail(f"slapd did not start or load the test directory: {stderr}\n{output}")


@pytest.fixture
def slapd(tmp_path) -> Iterator[Directory]:
    """A real OpenLDAP server on a free port, holding DIRECTORY; stopped after the test."""
    folder = tmp_path / "slapd"
    (folder / "data").mkdir(parents=True)
    config = folder / "slapd.conf"
    config.write_text(SLAPD_CONF.format(folder=folder, suffix=SUFFIX, root_dn=ROOT_DN, root_password=ROOT_PASSWORD))
    server, uri = start_slapd(config)
    try:
        yield Directory(uri)
    finally:
        server.terminate()
        server.wait(timeout=10)


def directory_environment(uri: str, **overrides: str) -> dict[str, str]:
    return {
        "PAINSITE_LDAP_SERVER_URI": uri,
        "PAINSITE_LDAP_BIND_DN": ROOT_DN,
        "PAINSITE_LDAP_BIND_PASSWORD": ROOT_PASSWORD,
        "PAINSITE_LDAP_USER_SEARCH_BASE": f"ou=people,{SUFFIX}",
        "PAINSITE_LDAP_GROUP_SEARCH_BASE": f"ou=groups,{SUFFIX}",
        "PAINSITE_LDAP_GROUP_TYPE": "groupOfNames",
        # Spaces and capitals as an administrator might type them: DNs are compared normalised.
        "PAINSITE_LDAP_ROLE_GROUPS": (
            f"clinician=CN=Pain-Clinicians, ou=groups, {SUFFIX};\nresearcher={RESEARCHERS};admin={ADMINS}"
        ),
        "PAINSITE_LDAP_TIMEOUT_SECONDS": "3",
        **overrides,
    }


def use_directory(settings, environment: dict[str, str]) -> None:
    """Settings as settings.py makes them from these environment variables."""
    from painsite.core.directory_config import directory_settings

    for name, value in directory_settings(environment).items():
        setattr(settings, name, value)
    settings.AUTHENTICATION_BACKENDS = [
        "painsite.core.auth.LockoutBackend",
        "painsite.core.directory.DirectoryBackend",
        "painsite.core.auth.RolePermissionBackend",
    ]


@pytest.fixture
def directory(slapd, settings) -> Directory:
    use_directory(settings, directory_environment(slapd.uri))
    return slapd


def sign_in(client, username: str, password: str = DIRECTORY_PASSWORD):
    return client.post(reverse("login"), {"username": username, "password": password})


def role_changes(username: str) -> list[dict]:
    events = AuditEvent.objects.filter(action="user.role_change", details__username=username).order_by("id")
    return [event.details for event in events]


def test_a_directory_clinician_signs_in_on_the_login_page_and_gets_the_clinician_role(client, directory):
    response = sign_in(client, "dora")
    assert response.status_code == 302 and response.url == reverse("dashboard")
    dora = User.objects.get(username="dora")
    assert role_of(dora) == CLINICIAN and not dora.is_staff
    assert (dora.first_name, dora.last_name, dora.email) == ("Dora", "Nurse", "dora@hospital.example.org")
    assert not dora.has_usable_password()
    assert dora.directory_account.directory_dn == f"uid=dora,ou=people,{SUFFIX}"
    assert client.get(reverse("patients")).status_code == 200


def test_someone_in_two_mapped_groups_gets_the_higher_role(client, directory):
    assert sign_in(client, "ravi").status_code == 302
    ravi = User.objects.get(username="ravi")
    assert role_of(ravi) == RESEARCHER
    assert list(ravi.groups.values_list("name", flat=True)) == [RESEARCHER]
    assert ravi.has_perm("annotation.add_painlabel") and ravi.has_perm("modeling.add_trainingrun")


def test_taking_someone_out_of_the_directory_group_takes_the_role_away_at_the_next_sign_in(client, directory):
    assert sign_in(client, "ravi").status_code == 302
    client.logout()
    directory.remove_member(RESEARCHERS, "ravi")
    assert sign_in(client, "ravi").status_code == 302
    assert role_of(User.objects.get(username="ravi")) == CLINICIAN
    assert client.get(reverse("training")).status_code == 403


def test_a_directory_admin_is_staff_only_while_in_the_admin_group(client, directory):
    assert sign_in(client, "ines").status_code == 302
    ines = User.objects.get(username="ines")
    assert role_of(ines) == ADMIN and ines.is_staff and not ines.is_superuser
    client.logout()
    directory.remove_member(ADMINS, "ines")
    directory.add_member(CLINICIANS, "ines")
    assert sign_in(client, "ines").status_code == 302
    ines.refresh_from_db()
    assert role_of(ines) == CLINICIAN and not ines.is_staff


def test_each_change_of_role_at_sign_in_is_audited_from_old_to_new(client, directory):
    sign_in(client, "ines")
    client.logout()
    sign_in(client, "ines")  # unchanged: no second event
    client.logout()
    directory.remove_member(ADMINS, "ines")
    directory.add_member(RESEARCHERS, "ines")
    sign_in(client, "ines")
    assert role_changes("ines") == [
        {"username": "ines", "from": None, "to": ADMIN, "source": "directory", "groups": [ADMINS]},
        {"username": "ines", "from": ADMIN, "to": RESEARCHER, "source": "directory", "groups": [RESEARCHERS]},
    ]


def test_someone_in_no_mapped_group_is_refused_and_gets_no_account(client, directory):
    response = sign_in(client, "kurt")
    assert response.status_code == 200
    assert "none of the hospital directory groups" in response.content.decode()
    assert not User.objects.filter(username="kurt").exists()
    assert client.get(reverse("dashboard")).status_code == 302


def test_someone_taken_out_of_every_mapped_group_loses_the_role_and_is_refused(client, directory):
    assert sign_in(client, "dora").status_code == 302
    client.logout()
    directory.remove_member(CLINICIANS, "dora")
    response = sign_in(client, "dora")
    assert "none of the hospital directory groups" in response.content.decode()
    assert role_of(User.objects.get(username="dora")) is None
    assert role_changes("dora")[-1]["from"] == CLINICIAN and role_changes("dora")[-1]["to"] is None


def test_a_wrong_directory_password_is_refused_like_any_wrong_password(client, directory):
    response = sign_in(client, "dora", "not-the-password")
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()
    assert not User.objects.filter(username="dora").exists()


def test_the_local_admin_still_signs_in_with_the_local_password(client, directory, admin_user):
    """A directory entry with the same name (uid=ada) can neither take the account over nor block it."""
    assert sign_in(client, "ada", DIRECTORY_PASSWORD).status_code == 200
    assert sign_in(client, "ada", PASSWORD).status_code == 302
    admin_user.refresh_from_db()
    assert role_of(admin_user) == ADMIN and admin_user.has_usable_password()
    assert role_changes("ada") == []


def test_deactivating_a_directory_account_signs_it_out_at_its_next_request(client, directory):
    sign_in(client, "dora")
    assert client.get(reverse("patients")).status_code == 200
    User.objects.filter(username="dora").update(is_active=False)
    assert client.get(reverse("patients")).status_code == 302


def test_a_deactivated_directory_account_cannot_sign_in_or_get_a_token(client, directory):
    sign_in(client, "dora")
    client.logout()
    User.objects.filter(username="dora").update(is_active=False)
    assert "deactivated" in sign_in(client, "dora").content.decode()
    refused = api_client_for(None).post(
        reverse("api-token"), {"username": "dora", "password": DIRECTORY_PASSWORD}, format="json"
    )
    assert refused.status_code == 400 and "deactivated" in refused.json()["error"]
    assert not Token.objects.filter(user__username="dora").exists()


def test_the_token_endpoint_accepts_directory_credentials_and_applies_the_role(directory):
    response = api_client_for(None).post(
        reverse("api-token"), {"username": "ravi", "password": DIRECTORY_PASSWORD}, format="json"
    )
    assert response.status_code == 200
    ravi = User.objects.get(username="ravi")
    assert Token.objects.get(user=ravi).key == response.json()["token"]
    assert role_of(ravi) == RESEARCHER


def test_repeated_wrong_directory_passwords_lock_the_account_before_the_directory_is_asked(client, directory, settings):
    for _ in range(settings.PAINSITE_LOGIN_FAILURE_LIMIT):
        sign_in(client, "dora", "guess")
    response = sign_in(client, "dora")
    assert "Too many failed log-in attempts" in response.content.decode()
    assert not User.objects.filter(username="dora").exists()


def test_a_directory_that_does_not_answer_is_named_and_local_accounts_still_sign_in(client, settings, admin_user):
    use_directory(settings, directory_environment(f"ldap://127.0.0.1:{free_port()}/"))
    response = sign_in(client, "dora")
    assert response.status_code == 200
    assert "The hospital directory could not be asked" in response.content.decode()
    assert sign_in(client, "ada", PASSWORD).status_code == 302


def test_a_directory_that_refuses_the_service_account_is_named_too(client, slapd, settings):
    use_directory(settings, directory_environment(slapd.uri, PAINSITE_LDAP_BIND_PASSWORD="rotated-yesterday"))
    assert "The hospital directory could not be asked" in sign_in(client, "dora").content.decode()
    assert not User.objects.filter(username="dora").exists()


def test_the_next_directory_server_is_asked_when_the_first_does_not_answer(client, slapd, settings):
    use_directory(settings, directory_environment(f"ldap://127.0.0.1:{free_port()}/ {slapd.uri}"))
    assert sign_in(client, "dora").status_code == 302


def test_a_role_change_made_on_the_people_page_is_replaced_by_the_directory_at_the_next_sign_in(client, directory):
    from painsite.core.people import change_role

    sign_in(client, "dora")
    client.logout()
    change_role(actor=None, user=User.objects.get(username="dora"), role=RESEARCHER)
    sign_in(client, "dora")
    assert role_of(User.objects.get(username="dora")) == CLINICIAN


def person_row(page: str, username: str) -> str:
    row = page[page.index(f'id="person-{username}"') :]
    return row[: row.index("</tr>")]


def test_the_people_page_marks_directory_accounts_and_gives_them_no_local_password(client, directory, admin_user):
    User.objects.create_user("restored-rater", password=None)
    sign_in(client, "dora")
    client.logout()
    assert sign_in(client, "ada", PASSWORD).status_code == 302  # the local admin
    page = client.get(reverse("people")).content.decode()
    dora_row, ada_row = person_row(page, "dora"), person_row(page, "ada")
    assert "hospital directory" in dora_row and "Reset password" not in dora_row
    assert "Set again from the directory groups" in dora_row
    assert "hospital directory" not in ada_row and "Reset password" in ada_row
    # An account without a password that the directory never signed in (a rater restored from a
    # backup) is not a directory account: the admin gives it a password here.
    restored_row = person_row(page, "restored-rater")
    assert "hospital directory" not in restored_row and "Reset password" in restored_row

    dora = User.objects.get(username="dora")
    refused = client.post(reverse("person-password", args=[dora.pk]), follow=True)
    assert "dora signs in through the hospital directory" in refused.content.decode()
    dora.refresh_from_db()
    assert not dora.has_usable_password()
    assert not AuditEvent.objects.filter(action="user.password_reset").exists()
    client.logout()
    assert sign_in(client, "dora").status_code == 302  # still the directory's account


def test_with_directory_sign_in_off_a_directory_account_can_be_given_a_local_password(
    client, directory, admin_user, settings
):
    sign_in(client, "dora")
    client.logout()
    settings.AUTHENTICATION_BACKENDS = ["painsite.core.auth.LockoutBackend", "painsite.core.auth.RolePermissionBackend"]
    assert sign_in(client, "ada", PASSWORD).status_code == 302
    dora = User.objects.get(username="dora")
    assert "Reset password" in person_row(client.get(reverse("people")).content.decode(), "dora")
    shown = client.post(reverse("person-password", args=[dora.pk]))
    assert shown.status_code == 200
    dora.refresh_from_db()
    assert dora.has_usable_password()


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ("nurse=cn=pain-clinicians,dc=example,dc=org", "valid roles: clinician, researcher, admin"),
        ("clinician", "is not role=group DN"),
        ("clinician=not a dn", "is not a distinguished name"),
        (" ; ", "PAINSITE_LDAP_ROLE_GROUPS is empty"),
    ],
)
def test_a_role_mapping_that_cannot_be_read_stops_the_site_with_the_reason(mapping, message):
    from django.core.exceptions import ImproperlyConfigured

    from painsite.core.directory_config import directory_settings

    with pytest.raises(ImproperlyConfigured, match=message):
        directory_settings(directory_environment("ldap://127.0.0.1:1/", PAINSITE_LDAP_ROLE_GROUPS=mapping))


def test_several_groups_may_map_to_one_role():
    from painsite.core.directory_config import parse_role_groups

    assert parse_role_groups(f"clinician={CLINICIANS}\nclinician=cn=Ward-7,ou=groups,{SUFFIX};admin={ADMINS}") == {
        "clinician": (CLINICIANS, f"cn=ward-7,ou=groups,{SUFFIX}"),
        "admin": (ADMINS,),
    }


def run_settings_probe(tmp_path, **environment: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PAINSITE_", "SECRET_KEY"))}
    probe = "import django; django.setup(); from django.conf import settings; print(settings.AUTHENTICATION_BACKENDS)"
    return subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "painsite.settings", "PAINSITE_VAR_DIR": str(tmp_path), **environment},
        capture_output=True,
        text=True,
    )


def test_settings_ask_the_directory_first_only_when_a_server_is_configured(tmp_path):
    without = run_settings_probe(tmp_path)
    assert without.returncode == 0, without.stderr
    assert "DirectoryBackend" not in without.stdout
    with_directory = run_settings_probe(tmp_path, **directory_environment("ldaps://directory.hospital.example.org"))
    assert with_directory.returncode == 0, with_directory.stderr
    assert with_directory.stdout.strip() == str(
        [
            "painsite.core.auth.LockoutBackend",
            "painsite.core.directory.DirectoryBackend",
            "painsite.core.auth.RolePermissionBackend",
        ]
    )
    missing = run_settings_probe(tmp_path, PAINSITE_LDAP_SERVER_URI="ldaps://directory.hospital.example.org")
    assert missing.returncode != 0 and "PAINSITE_LDAP_USER_SEARCH_BASE is required" in missing.stderr
