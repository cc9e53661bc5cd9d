"""The preferences routes' bodies: `GET|PATCH /v1/users/{user_id}/preferences` (mailwright.preference_changes)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from mailwright.preference_changes import NOTE_LIMIT, PreferenceChange, PreferenceState


class UserPreferences(BaseModel):
    """A user's preferences as the API answers them (a user without a record has the defaults: everything)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    user_id: str = Field(description="The user the preferences are for.")
    locale: str | None = Field(description="BCP 47 locale the user's mail is rendered in; null: the request's.")
    timezone: str | None = Field(description="IANA time zone of the quiet hours; null: none set.")
    quiet_hours: str | None = Field(description="`HH:MM-HH:MM` in the user's time zone; null: none.")
    opted_out: list[str] = Field(description="Optional categories the user gets no mail of, sorted.")
    unsubscribed_all: bool = Field(description="True: the user gets no optional mail at all.")
    updated_at: float | None = Field(description="When they last changed (epoch seconds); null: never stored.")

    @classmethod
    def of(cls, user_id: str, state: PreferenceState) -> UserPreferences:
        """The answer for a user's merged state."""
        preferences = state.preferences
        return cls(
            user_id=user_id,
            locale=preferences.locale,
            timezone=preferences.timezone,
            quiet_hours=str(preferences.quiet_hours) if preferences.quiet_hours is not None else None,
            opted_out=sorted(preferences.opted_out),
            unsubscribed_all=preferences.unsubscribed_all,
            # To the millisecond, as the table stores it: a PATCH answers what a GET then reads.
            updated_at=round(state.updated_at, 3) if state.updated_at is not None else None,
        )


class PreferencesUpdate(BaseModel):
    """The body of `PATCH /v1/users/{user_id}/preferences`: what to change (the CLI's `preferences set` options)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    locale: str | None = Field(default=None, description='BCP 47 locale such as fr-CA; "" or "none" clears it.')
    timezone: str | None = Field(default=None, description='IANA time zone such as Europe/Paris; "" clears it.')
    quiet_hours: str | None = Field(default=None, description='`HH:MM-HH:MM` such as 21:00-08:00; "" clears it.')
    opt_out: list[str] = Field(default_factory=list, max_length=32, description="Optional categories to stop.")
    opt_in: list[str] = Field(default_factory=list, max_length=32, description="Optional categories to resume.")
    unsubscribe_all: bool = Field(default=False, description="Stop all optional mail.")
    resubscribe: bool = Field(default=False, description="Lift an unsubscribe from all optional mail.")
    override_user_choice: bool = Field(
        default=False,
        description="Lift an opt-out or unsubscribe the user made themselves (needs `note`); else 409.",
    )
    note: str = Field(default="", max_length=NOTE_LIMIT, description="Why: kept in the audit trail.")

    def change(self) -> PreferenceChange:
        """The domain change this body asks for."""
        return PreferenceChange(
            locale=self.locale,
            timezone=self.timezone,
            quiet_hours=self.quiet_hours,
            opt_out=frozenset(self.opt_out),
            opt_in=frozenset(self.opt_in),
            unsubscribe_all=self.unsubscribe_all,
            resubscribe=self.resubscribe,
        )
