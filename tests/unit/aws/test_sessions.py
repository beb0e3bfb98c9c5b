"""Sessions of assumed roles: their own credentials, the service data of the service's session."""

from __future__ import annotations

from contextlib import AsyncExitStack

from service.aws.clients import Connections
from service.aws.organization import Organization
from service.config import AwsSettings, OrganizationSettings
from service.reading import Unobserved

MEMBERS = ("111111111111", "222222222222")


def _organization(stack: AsyncExitStack) -> tuple[Connections, Organization]:
    settings = AwsSettings(
        endpoint_url="http://127.0.0.1:9",
        organization=OrganizationSettings(role_name="reader", regions=["us-east-1"]),
    )
    connections = Connections(settings, Unobserved(), None, stack)
    assert settings.organization is not None
    return connections, Organization(settings.organization, connections, state_dir=None)


async def test_an_accounts_session_loads_no_service_data_of_its_own() -> None:
    async with AsyncExitStack() as stack:
        connections, organization = _organization(stack)
        base_loader = connections.base.get_component("data_loader")
        sessions = [organization.role(account).session for account in MEMBERS]
        clients = [await connections.open_ecr(session, "eu-west-1") for session in sessions]
        # Each account's credentials are its own...
        assert sessions[0] is not sessions[1]
        assert sessions[0].get_component("credential_provider") is not sessions[1].get_component(
            "credential_provider"
        )
        # ...and the models and endpoint tables its clients were made from were loaded once,
        # by the service's session.
        for session in sessions:
            assert session.get_component("data_loader") is base_loader
        model = base_loader.load_service_model("ecr", "service-2")
        for client in clients:
            assert client.meta.service_model.operation_names == sorted(model["operations"])
        assert base_loader.load_service_model("ecr", "service-2") is model
