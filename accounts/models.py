"""Tenancy and identity: organizations own projects; users reach projects through memberships."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.postgres.fields import ArrayField
from django.db import models


class UserManager(BaseUserManager["User"]):
    def create_user(self, email: str, password: str | None = None, **fields: object) -> User:
        user = self.model(email=self.normalize_email(email).lower(), **fields)
        user.set_password(password)
        user.save(using=self._db)
        return user


class User(AbstractBaseUser):
    """A person who logs in with email and password, or acts through personal API keys."""

    uuid = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    # Stored lowercased (see save), so the unique index also serves case-insensitive login lookups.
    email = models.EmailField(max_length=254, unique=True)
    first_name = models.CharField(max_length=150, blank=True, default="")
    last_name = models.CharField(max_length=150, blank=True, default="")
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(auto_now_add=True)

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    objects = UserManager()

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.email = self.email.strip().lower()
        super().save(*args, **kwargs)

    def __str__(self) -> str:
        return self.email


class Organization(models.Model):
    name = models.CharField(max_length=200)
    is_ai_data_processing_approved = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class OrganizationMembership(models.Model):
    """A user's membership of an organization; it grants access to all of its projects."""

    class Level(models.IntegerChoices):
        MEMBER = 1, "member"
        ADMIN = 8, "admin"
        OWNER = 15, "owner"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        User, on_delete=models.CASCADE, related_name="memberships", db_index=False
    )  # indexed by membership_user_org_unique
    level = models.PositiveSmallIntegerField(choices=Level.choices, default=Level.MEMBER)
    joined_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            # Also serves "is this user a member of the organization owning project P".
            models.UniqueConstraint(fields=["user", "organization"], name="membership_user_org_unique"),
        ]


class Project(models.Model):
    """PostHog's team/environment: the unit every insight, tag, view and event belongs to."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="projects", db_index=False
    )  # indexed by project_org_name_idx
    name = models.CharField(max_length=200)
    timezone = models.CharField(max_length=64, default="UTC")
    created_at = models.DateTimeField(auto_now_add=True)

    # The caller's membership level in the project, annotated by the reads that resolve a caller's
    # project (ProjectScopedViewSet.project, accounts.selectors.api_key_caller); not a column.
    caller_level: int

    class Meta:
        indexes = [
            # bootstrap reuses a project by (organization, name).
            models.Index(fields=["organization", "name"], name="project_org_name_idx"),
        ]

    def __str__(self) -> str:
        return self.name


class PersonalAPIKey(models.Model):
    """A user's bearer key. Only a SHA-256 digest of the secret is stored; the secret is shown once.

    The key's public `prefix` (its first characters) finds the row; the digest of the whole key is
    then compared in constant time, so response timing never depends on how much of a guess matched.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="personal_api_keys")
    label = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16)
    secure_value = models.CharField(max_length=64)
    scopes = ArrayField(models.CharField(max_length=64), default=list)
    # None: every project the user can reach; otherwise only these project ids.
    scoped_project_ids = ArrayField(models.BigIntegerField(), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    # The URL's project as resolved with the key, set on the key of a request by its authentication
    # (PersonalAPIKeyAuthentication); not a column.
    url_project: UrlProject

    class Meta:
        constraints = [
            # Authentication looks a key up by its prefix on every request.
            models.UniqueConstraint(fields=["prefix"], name="personal_api_key_prefix_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.label} ({self.prefix}…)"


@dataclass(frozen=True)
class UrlProject:
    """The project a URL names (`id`, None when the URL names none or an impossible id), and that
    project when the caller is a member of its organization (else None), as resolved with the key."""

    id: int | None
    project: Project | None
