import pytest

from token_billing.core.errors import Forbidden, Unauthorized
from token_billing.edge.access import authorize_customer, caller_from_jwt


def test_no_claims_is_unauthorized() -> None:
    with pytest.raises(Unauthorized):
        caller_from_jwt(None, None)
    with pytest.raises(Unauthorized):
        caller_from_jwt({"customer_id": "a"}, [])  # no subject


def test_a_customer_reaches_only_their_own_tokens() -> None:
    caller = caller_from_jwt({"sub": "u1", "customer_id": "cust_a"}, None)
    authorize_customer(caller, "cust_a")
    with pytest.raises(Forbidden) as refused:
        authorize_customer(caller, "cust_b")
    assert "cust_b" not in refused.value.message  # learns nothing about the other customer


def test_cognito_attribute_is_read_too() -> None:
    caller = caller_from_jwt({"sub": "u1", "custom:customer_id": "cust_a"}, None)
    assert caller.customer_id == "cust_a"


@pytest.mark.parametrize(
    ("claims", "scopes"),
    [
        ({"sub": "s"}, ["admin"]),
        ({"sub": "s", "scope": "openid admin"}, None),
        ({"sub": "s"}, ["token-billing/admin"]),
        ({"sub": "s", "cognito:groups": "[support admin]"}, None),
        ({"sub": "s", "cognito:groups": ["admin"]}, None),
    ],
)
def test_admin_scope_reaches_anyone(claims: dict[str, object], scopes: list[str] | None) -> None:
    caller = caller_from_jwt(claims, scopes)
    assert caller.is_admin
    authorize_customer(caller, "anyone")


@pytest.mark.parametrize(
    "claims", [{"sub": "s", "scope": "administrator"}, {"sub": "s", "cognito:groups": "[admins]"}]
)
def test_near_misses_are_not_admin(claims: dict[str, object]) -> None:
    caller = caller_from_jwt(claims, None)
    assert not caller.is_admin
    with pytest.raises(Forbidden):
        authorize_customer(caller, "anyone")
