"""The console's users, as :mod:`oseod.admin.actions.users` has them: the
list, a user's page, adding, changing, disabling, a new password and
deleting."""

from __future__ import annotations

from typing import Any, ClassVar

from klein import Klein
from twisted.web.iweb import IRequest

from ..admin.actions import ActionRefused, Actor, Refusal
from ..model.sessions import SessionRecord
from .forms import Form, FormError
from .frame import BASE, MAX_ID, Part, error_pages, page_url


class UserPages(Part):
    app: ClassVar[Klein] = Klein()
    segments = ("users",)
    error_pages(app)

    @app.route("/users", methods=["GET", "HEAD"])
    async def users(self, request: IRequest) -> bytes:
        async def build(record: SessionRecord) -> tuple[str, dict[str, Any]]:
            Form(request, ())
            return "users.html", {"users": await self.actions.users()}

        return await self.frame.page(request, "users", build)

    @app.route("/users", methods=["POST"])
    async def add_user(self, request: IRequest) -> bytes:
        async def act(form: Form, who: Actor) -> str:
            name = form.text("name", required="a new user needs a name", max_length=64)
            password = form.text("password", required="a new user needs a password", strip=False)
            if password != form.text("password2", strip=False):
                raise FormError("the two passwords differ; nothing was changed")
            view, warnings = await self.actions.add_user(
                who, name, password, group=form.text("group", max_length=64) or "default", admin=form.flag("admin"),
                email=form.text("email", max_length=254))
            return f"user {view.name} added" + (f" (password: {'; '.join(warnings)})" if warnings else "")

        return await self.frame.post(request, {"name", "password", "password2", "group", "email", "admin"},
                                     f"{BASE}users", act)

    @app.route("/users/<name>", methods=["GET", "HEAD"])
    async def user(self, request: IRequest, name: str) -> bytes:
        async def build(record: SessionRecord) -> tuple[str, dict[str, Any]]:
            Form(request, ())
            if len(name) > MAX_ID:
                raise ActionRefused(Refusal.NOT_FOUND, "no such user")
            return "user.html", {"user": await self.actions.user(name), "back": page_url("users", name)}

        return await self.frame.page(request, "users", build)

    @app.route("/users/<name>/edit", methods=["POST"])
    async def edit_user(self, request: IRequest, name: str) -> bytes:
        async def act(form: Form, who: Actor) -> str:
            view = await self.actions.set_user(who, name, group=form.text("group", max_length=64) or None,
                                               email=form.text("email", max_length=254), admin=form.flag("admin"))
            return f"user {view.name} changed: group {view.group}, {'operator' if view.admin else 'not an operator'}"

        return await self.frame.post(request, {"group", "email", "admin"}, page_url("users", name), act)

    @app.route("/users/<name>/disable", methods=["POST"])
    async def disable_user(self, request: IRequest, name: str) -> bytes:
        async def act(form: Form, who: Actor) -> str:
            await self.actions.set_user(who, name, disabled=True)
            return f"user {name} disabled: they can no longer log in"

        return await self.frame.post(request, (), page_url("users", name), act)

    @app.route("/users/<name>/enable", methods=["POST"])
    async def enable_user(self, request: IRequest, name: str) -> bytes:
        async def act(form: Form, who: Actor) -> str:
            await self.actions.set_user(who, name, disabled=False)
            return f"user {name} enabled"

        return await self.frame.post(request, (), page_url("users", name), act)

    @app.route("/users/<name>/password", methods=["POST"])
    async def reset_password(self, request: IRequest, name: str) -> bytes:
        async def act(form: Form, who: Actor) -> str:
            password = form.text("password", required="type the new password twice", strip=False)
            if password != form.text("password2", strip=False):
                raise FormError("the two passwords differ; the password was not changed")
            warnings = await self.actions.set_password(who, name, password)
            return f"password of {name} changed" + (f" ({'; '.join(warnings)})" if warnings else "")

        return await self.frame.post(request, {"password", "password2"}, page_url("users", name), act)

    @app.route("/users/<name>/delete", methods=["POST"])
    async def delete_user(self, request: IRequest, name: str) -> bytes:
        async def act(form: Form, who: Actor) -> str:
            if not form.flag("confirm"):
                raise FormError(f"tick the box to confirm that {name} is to be deleted")
            await self.actions.delete_user(who, name)
            return f"user {name} deleted"

        return await self.frame.post(request, {"confirm"}, f"{BASE}users", act)
