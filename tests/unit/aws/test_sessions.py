"""Sessions of assumed roles: their own credentials, the service data of the service's session."""

from __future__ import annotations

from contextlib import AsyncExitStack

from service.aws.clients import Connections
from service.aws.organization import Organization
from service.config import AwsSettings, OrganizationSettings
from service.reading import Unobserved

MEMBERS = ("111111111111", "222222222222")
REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2")


def _organization(stack: AsyncExitStack) -> tuple[Connections, Organization]:
    settings = AwsSettings(
        endpoint_url="http://127.0.0.1:9",
        organization=OrganizationSettings(role_name="reader", regions=list(REGIONS)),
    )
    connections = Connections(settings, Unobserved(), None, stack)
    assert settings.organization is not None
    return connections, Organization(settings.organization, connections, state_dir=None)


async def test_an_account_has_one_session_over_the_service_sessions_loaded_data() -> None:
    async with AsyncExitStack() as stack:
        connections, organization = _organization(stack)
        loader = connections.base.get_component("data_loader")
        paths = len(loader.search_paths)
        roles = [organization.role(account) for account in MEMBERS]
        clients = [
            await connections.open_ecr(r.session, region) for r in roles for region in REGIONS
        ]
        # Each account's credentials are its own...
        assert roles[0].session is not roles[1].session
        # ...and its session loads through the service's loader, which each aioboto3 session
        # gives boto3's folder: once per account, never once per client.
        assert len(loader.search_paths) == paths + len(MEMBERS)
        # The clients were made from the one model that loader loaded and keeps.
        model = loader.load_service_model("ecr", "service-2")
        for client in clients:
            assert client.meta.service_model.operation_names == sorted(model["operations"])
        assert loader.load_service_model("ecr", "service-2") is model
