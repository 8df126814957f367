"""Writes for organizations, projects, users and API keys."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import Organization, OrganizationMembership, PersonalAPIKey, Project, User
from accounts.scopes import invalid_scopes

API_KEY_PREFIX = "ins_"
API_KEY_LOOKUP_LENGTH = 12  # "ins_" + 8 random characters identify the row


def api_key_digest(raw_key: str) -> str:
    # Keys carry 256 bits of randomness, so a plain SHA-256 is enough: there is nothing to brute-force.
    return hashlib.sha256(raw_key.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedKey:
    key: PersonalAPIKey
    secret: str  # shown to the caller once, never stored


def personal_api_key_create(
    *, user: User, label: str, scopes: list[str], scoped_project_ids: list[int] | None = None
) -> IssuedKey:
    bad = invalid_scopes(scopes)
    if bad or not scopes:
        raise ValueError(f"Invalid scopes: {', '.join(bad) or '(none given)'}")
    for _attempt in range(5):
        secret = API_KEY_PREFIX + secrets.token_urlsafe(32)
        try:
            with transaction.atomic():
                key = PersonalAPIKey.objects.create(
                    user=user,
                    label=label,
                    prefix=secret[:API_KEY_LOOKUP_LENGTH],
                    secure_value=api_key_digest(secret),
                    scopes=sorted(set(scopes)),
                    scoped_project_ids=scoped_project_ids,
                )
        except IntegrityError:  # a prefix collision: astronomically rare, simply draw again
            continue
        return IssuedKey(key=key, secret=secret)
    raise RuntimeError("Could not draw a unique API key prefix.")


def personal_api_key_touch(*, key: PersonalAPIKey, resolution_seconds: float) -> None:
    """Record that a key was used, at most once per `resolution_seconds`, so a busy key does not
    turn every read into a write. The UPDATE is conditional, so concurrent requests write once."""
    now = timezone.now()
    threshold = now - timedelta(seconds=resolution_seconds)
    if key.last_used_at is not None and key.last_used_at >= threshold:
        return
    PersonalAPIKey.objects.filter(id=key.id).exclude(last_used_at__gte=threshold).update(last_used_at=now)
    key.last_used_at = now


@dataclass(frozen=True)
class Bootstrapped:
    user: User
    organization: Organization
    project: Project
    api_key: IssuedKey


@transaction.atomic
def installation_bootstrap(
    *,
    email: str,
    password: str | None,
    organization_name: str,
    project_name: str,
    scopes: list[str],
    ai_approved: bool,
    project_scoped: bool,
    level: int | None = None,
) -> Bootstrapped:
    """Create or reuse (by email / by name) a user, organization, project and membership, then issue
    a fresh personal API key. Running it again never duplicates anything but the key. The membership
    is `level` when given; otherwise an owner for the user who creates the organization and a member
    for one who joins it (an existing membership keeps its level unless `level` is given)."""
    email = User.objects.normalize_email(email).lower()
    user = User.objects.filter(email__iexact=email).first()
    if user is None:
        user = User.objects.create_user(email=email, password=password)
    elif password:
        user.set_password(password)
        user.save(update_fields=["password"])

    organization = (
        Organization.objects.filter(name=organization_name, memberships__user=user).order_by("id").first()
        or Organization.objects.filter(name=organization_name).order_by("id").first()
    )
    founder = organization is None
    if organization is None:
        organization = Organization.objects.create(name=organization_name)
    if ai_approved and not organization.is_ai_data_processing_approved:
        organization.is_ai_data_processing_approved = True
        organization.save(update_fields=["is_ai_data_processing_approved"])
    default = OrganizationMembership.Level.OWNER if founder else OrganizationMembership.Level.MEMBER
    membership, created = OrganizationMembership.objects.get_or_create(
        organization=organization, user=user, defaults={"level": level or default}
    )
    if not created and level is not None and membership.level != level:
        membership.level = level
        membership.save(update_fields=["level"])
    project = Project.objects.filter(organization=organization, name=project_name).order_by("id").first()
    if project is None:
        project = Project.objects.create(organization=organization, name=project_name)

    issued = personal_api_key_create(
        user=user,
        label=f"bootstrap {timezone.now():%Y-%m-%d %H:%M}",
        scopes=scopes,
        scoped_project_ids=[project.id] if project_scoped else None,
    )
    return Bootstrapped(user=user, organization=organization, project=project, api_key=issued)


def personal_api_keys_revoke(*, keys: QuerySet[PersonalAPIKey]) -> list[str]:
    """Revoke keys by deleting them (only their digest was stored, so nothing of them remains); the
    next request with one is a 401. Returns the prefixes of the keys revoked."""
    with transaction.atomic():
        prefixes = list(keys.select_for_update().order_by("id").values_list("prefix", flat=True))
        keys.delete()
    return prefixes
