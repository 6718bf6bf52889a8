"""The People page: admins create accounts, give or change roles, deactivate, reset passwords."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.models import User
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache

from painsite.core import people
from painsite.core.models import DirectoryAccount
from painsite.core.permissions import page_permissions
from painsite.core.roles import ROLE_LABELS, ROLES, role_of

ROLE_CHOICES = [(role, ROLE_LABELS[role]) for role in ROLES]


class PersonForm(forms.Form):
    username = forms.CharField(label=_("Username"), max_length=150)
    email = forms.EmailField(label=_("E-mail"), required=False)
    role = forms.ChoiceField(label=_("Role"), choices=ROLE_CHOICES)
    password = forms.CharField(
        label=_("Password"),
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False),
        help_text=_("Leave empty to generate one, shown once after saving."),
    )


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=ROLE_CHOICES)


def _people_page(
    request: HttpRequest, *, form: PersonForm, shown_password: dict | None = None, status: int = 200
) -> HttpResponse:
    search = request.GET.get("q", "").strip()
    accounts = User.objects.prefetch_related("groups").order_by("-is_active", "username")
    if search:
        accounts = accounts.filter(Q(username__icontains=search) | Q(email__icontains=search))
    page = Paginator(accounts, 50).get_page(request.GET.get("page"))
    directory_ids = set(DirectoryAccount.objects.filter(user__in=list(page)).values_list("user_id", flat=True))
    rows = [{"user": user, "role": role_of(user), "directory": user.pk in directory_ids} for user in page]
    context = {
        "directory_on": people.directory_sign_in_on(),
        "page": page,
        "rows": rows,
        "form": form,
        "roles": ROLE_CHOICES,
        "search": search,
        "shown_password": shown_password,
    }
    return render(request, "core/people.html", context, status=status)


@never_cache
@page_permissions(GET="auth.view_user", POST=["auth.view_user", "auth.add_user"])
def people_page(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return _people_page(request, form=PersonForm())
    form = PersonForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            user, generated = people.create_person(
                actor=request.user,
                username=data["username"],
                role=data["role"],
                email=data["email"],
                password=data["password"] or None,
            )
        except people.PeopleError as error:
            form.add_error(None, str(error))
        else:
            if generated is None:
                messages.success(
                    request,
                    gettext("Account %(username)s created as %(role)s.")
                    % {"username": user.username, "role": ROLE_LABELS[data["role"]]},
                )
                return redirect("people")
            # Shown in this answer only (not a redirect), so the password never sits in a message cookie.
            shown = {"username": user.username, "password": generated, "created": True}
            return _people_page(request, form=PersonForm(), shown_password=shown)
    return _people_page(request, form=form, status=422)


def _person(user_id: int) -> User:
    return get_object_or_404(User, pk=user_id)


@never_cache
@page_permissions(POST="auth.change_user")
def person_role(request: HttpRequest, user_id: int) -> HttpResponse:
    user = _person(user_id)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(
            request,
            gettext("Role not changed for %(username)s: choose one of %(roles)s.")
            % {"username": user.username, "roles": ", ".join(str(ROLE_LABELS[role]) for role in ROLES)},
        )
        return redirect("people")
    try:
        people.change_role(actor=request.user, user=user, role=form.cleaned_data["role"])
    except people.PeopleError as error:
        messages.error(request, gettext("Role not changed: %(reason)s.") % {"reason": error})
    else:
        messages.success(
            request,
            gettext("%(username)s is now %(role)s.")
            % {"username": user.username, "role": ROLE_LABELS[form.cleaned_data["role"]]},
        )
    return redirect("people")


@never_cache
@page_permissions(POST="auth.change_user")
def person_active(request: HttpRequest, user_id: int) -> HttpResponse:
    user = _person(user_id)
    active = request.POST.get("active") == "1"
    try:
        people.set_active(actor=request.user, user=user, active=active)
    except people.PeopleError as error:
        messages.error(request, gettext("Not changed: %(reason)s.") % {"reason": error})
    else:
        message = (
            gettext("%(username)s may log in again.")
            if active
            else gettext("%(username)s is deactivated: no log-in, no API token.")
        )
        messages.success(request, message % {"username": user.username})
    return redirect("people")


@never_cache
@page_permissions(POST="auth.change_user")
def person_password(request: HttpRequest, user_id: int) -> HttpResponse:
    user = _person(user_id)
    try:
        password = people.reset_password(actor=request.user, user=user)
    except people.PeopleError as error:
        messages.error(request, gettext("Password not reset: %(reason)s.") % {"reason": error})
        return redirect("people")
    if user.pk == request.user.pk:
        update_session_auth_hash(request, user)  # a new own password must not log the admin out
    return _people_page(request, form=PersonForm(), shown_password={"username": user.username, "password": password})
