"""The synthetic SNS world: vocabulary, text, the ground-truth user model, the generator."""

from __future__ import annotations

__all__ = ["UserModel", "generate_world", "world_config"]


def __getattr__(name: str):  # lazy: importing the package stays cheap
    if name in ("generate_world", "world_config"):
        from snsrec.data.world import generate

        return getattr(generate, name)
    if name == "UserModel":
        from snsrec.data.world.usermodel import UserModel

        return UserModel
    raise AttributeError(name)
