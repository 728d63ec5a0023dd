"""Signing: every published vector of the protocol doc (§11, §6.2), and the official V2 builder
(py-clob-client-v2, a test-only dependency) as an oracle on generated orders."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import given, settings, strategies as st

from mmbot.config import Secret
from mmbot.model import Side
from mmbot.venues.polymarket.auth import (
    EXCHANGE_V2, NEG_RISK_EXCHANGE_V2, ZERO_BYTES32, ApiCredentials, OrderSigner, OrderV2, SigningError, SigningKey,
    clob_auth_signature, hmac_signature, l2_headers, order_amounts,
)

HARDHAT_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
HARDHAT_ADDRESS = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
TOKEN = 71321045679252212594626385532706912750332728571942532289631379312455583992563
KEY = SigningKey(Secret(value=HARDHAT_KEY))


def test_the_key_signs_for_its_address_and_never_shows_itself() -> None:
    assert KEY.address == HARDHAT_ADDRESS
    assert HARDHAT_KEY[2:] not in repr(KEY) and "ac0974" not in repr(KEY)
    with pytest.raises(TypeError):
        pickle.dumps(KEY)
    with pytest.raises(SigningError) as bad:
        SigningKey(Secret(value="0xnot-hex-" + HARDHAT_KEY[12:]))
    assert HARDHAT_KEY[12:] not in str(bad.value)


def test_l1_clob_auth_vector() -> None:
    assert clob_auth_signature(KEY, "10000000", nonce=23, chain_id=80002) == (
        "0xf62319a987514da40e57e2f4d7529f7bac38f0355bd88bb5adbb3768d80de6c1682518e0af677d5260366425f4361e7b70"
        "c25ae232aff0ab2331e2b164a1aedc1b"
    )


def test_l2_hmac_vector_and_headers() -> None:
    secret = Secret(value="AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
    assert hmac_signature(secret, 1000000, "test-sign", "/orders", '{"hash": "0x123"}') == (
        "ZwAdJKvoYRlEKDkNMwd5BuwNNtg93kNaR_oU2HrfVvc="
    )
    creds = ApiCredentials(api_key="k", secret=secret, passphrase=Secret(value="p"))
    headers = l2_headers(HARDHAT_ADDRESS, creds, 1000000, "test-sign", "/orders", '{"hash": "0x123"}')
    assert headers["POLY_SIGNATURE"] == "ZwAdJKvoYRlEKDkNMwd5BuwNNtg93kNaR_oU2HrfVvc="
    assert headers["POLY_API_KEY"] == "k" and headers["POLY_PASSPHRASE"] == "p" and "AAAA" not in repr(creds)


V2_VECTORS = [
    (123456789, Side.BUY, 0, 100000000, 50000000, 1713398400000, ZERO_BYTES32, False,
     "0x32961c48ddac87ed3582f8e02097cd0eff4fcf80460306bd44b3710438dfa64c",
     "0x89f178136333c8ebb32a19146cb891233e3202d474be6ef730c24dbc06ae4d2a0c99948a86d9b57de0f2c0bb8ec6964aa244ecf17cfa3a95b86878d0b64ad78a1b"),
    (987654321, Side.SELL, 0, 50000000, 100000000, 1713398400000, ZERO_BYTES32, True,
     "0x8b878404bd92dea2bfea9975c9fcd816ec70a57ae431cb20d67bb773744aaef3",
     "0xf7d60d64364e2615b08d9f69f3ea9afd3b4f83ecfbf05ddd3ca83f4916277fb97d2d080758d17c8e91c928aceb8ff252477ebaec051b672832500f63b4d36b061c"),
    (1, Side.BUY, 0, 100000000, 50000000, 1713398500000, "0x" + "00" * 31 + "01", False,
     "0x3df0b6f6ddfca837bc36964cae968b34ad35640b5d98f557c104da97e804e36a",
     "0xf4d2b34659e8bc07a9572d40ee5a1639a1157409613b4c21566b1f33fd8fe11a364b3f306668cae7248ca7cdf72378f9266bc5628585aa939644400030671e081c"),
    (111111111, Side.BUY, 1, 100000000, 50000000, 1713398400000, ZERO_BYTES32, False,
     "0x8f88fe2fb3448f4b8ba639992029f0a47a01a14d15b5f2bf9833516571efd279",
     "0x71a63c85b730cc934688f23ea6374afffef57a61690eba63dcb97a706c8a8d0f3d2a8e0280f3e252eb83be088ebae6b461a8eda18e559e079f59050b90057afa1c"),
    (222222222, Side.SELL, 2, 50000000, 100000000, 1713398400000, ZERO_BYTES32, True,
     "0xb34248702810a1d76580234a33f942a9801c3680de54cb3ef104572a8d482190",
     "0xab9d33aee8b578fe5588c4a4b16bbef6fa05fc757020f95b98212e877a919e360a90296f02e97ecbabf3c200271ffe88eb9fd86912e8376cd27237bdad5f3abc1c"),
]


@pytest.mark.parametrize("salt, side, sig_type, maker_amount, taker_amount, ts, builder, neg_risk, digest, signature",
                         V2_VECTORS)
def test_every_published_v2_order_vector(salt, side, sig_type, maker_amount, taker_amount, ts, builder, neg_risk,
                                         digest, signature) -> None:
    order = OrderV2(salt=salt, maker=HARDHAT_ADDRESS, signer=HARDHAT_ADDRESS, token_id=TOKEN,
                    maker_amount=maker_amount, taker_amount=taker_amount, side=side, signature_type=sig_type,
                    timestamp_ms=ts, builder=builder)
    assert OrderSigner(KEY).sign(order, neg_risk=neg_risk) == (digest, signature)


def test_orders_this_key_cannot_sign_are_refused() -> None:
    base = dict(salt=1, maker=HARDHAT_ADDRESS, signer=HARDHAT_ADDRESS, token_id=TOKEN, maker_amount=1,
                taker_amount=1, side=Side.BUY, timestamp_ms=1)
    signer = OrderSigner(KEY)
    with pytest.raises(SigningError, match="signer"):
        signer.sign(OrderV2(**{**base, "signer": "0x" + "11" * 20}))
    with pytest.raises(SigningError, match="maker must be its signer"):
        signer.sign(OrderV2(**{**base, "maker": "0x" + "22" * 20}))
    with pytest.raises(SigningError, match="not supported"):
        signer.sign(OrderV2(**{**base, "signature_type": 3}))


@pytest.mark.parametrize("side, size, price, tick, maker, taker", [
    (Side.BUY, "15", "0.24", "0.01", 3600000, 15000000),
    (Side.BUY, "101", "0.82", "0.01", 82820000, 101000000),
    (Side.BUY, "12.8205", "0.78", "0.01", 9999600, 12820000),
    (Side.SELL, "2435.89", "0.39", "0.01", 2435890000, 949997100),
    (Side.SELL, "19.1", "0.43", "0.01", 19100000, 8213000),
    (Side.BUY, "18233.33", "0.58", "0.01", 10575331400, 18233330000),
    (Side.BUY, "21.04", "0.0056", "0.0001", 117824, 21040000),
])
def test_every_published_amount_vector(side, size, price, tick, maker, taker) -> None:
    assert order_amounts(side, price, size, tick) == (maker, taker)


def test_prices_off_the_grid_or_range_are_refused() -> None:
    for price, tick in (("0.995", "0.01"), ("0", "0.01"), ("1", "0.01"), ("0.0004", "0.001"), ("0.007", "0.005")):
        with pytest.raises(SigningError):
            order_amounts(Side.BUY, price, "10", tick)
    with pytest.raises(SigningError, match="tick size"):
        order_amounts(Side.BUY, "0.5", "10", "0.02")


# --------------------------------------------------------------------------- the official builder as oracle


@pytest.mark.filterwarnings("ignore:The recursion limit will not be reset")  # eth-account's parser, in the oracle
@settings(max_examples=40, deadline=None)
@given(
    salt=st.integers(0, 2**64), token=st.integers(0, 2**256 - 1), maker_amount=st.integers(0, 10**15),
    taker_amount=st.integers(0, 10**15), side=st.sampled_from(Side), sig_type=st.sampled_from([0, 1, 2]),
    ts=st.integers(0, 2**48), builder=st.binary(min_size=32, max_size=32), metadata=st.binary(min_size=32, max_size=32),
    neg_risk=st.booleans(),
)
def test_signatures_equal_the_official_v2_builder(salt, token, maker_amount, taker_amount, side, sig_type, ts,
                                                  builder, metadata, neg_risk) -> None:
    official = pytest.importorskip("py_clob_client_v2.order_utils.exchange_order_builder_v2")
    from py_clob_client_v2.order_utils.model.order_data_v2 import OrderV2 as TheirOrder
    from py_clob_client_v2.signer import Signer

    maker = HARDHAT_ADDRESS if sig_type == 0 else "0x" + "ab" * 20
    ours = OrderV2(salt=salt, maker=maker, signer=HARDHAT_ADDRESS, token_id=token, maker_amount=maker_amount,
                   taker_amount=taker_amount, side=side, signature_type=sig_type, timestamp_ms=ts,
                   metadata="0x" + metadata.hex(), builder="0x" + builder.hex())
    builder_ = official.ExchangeOrderBuilderV2(NEG_RISK_EXCHANGE_V2 if neg_risk else EXCHANGE_V2, 137,
                                               Signer(HARDHAT_KEY, 137))
    theirs = TheirOrder(salt=str(salt), maker=maker, signer=HARDHAT_ADDRESS, tokenId=str(token),
                        makerAmount=str(maker_amount), takerAmount=str(taker_amount),
                        side=0 if side is Side.BUY else 1, signatureType=sig_type, timestamp=str(ts),
                        metadata="0x" + metadata.hex(), builder="0x" + builder.hex(), expiration="0")
    typed = builder_.build_order_typed_data(theirs)
    assert OrderSigner(KEY).sign(ours, neg_risk=neg_risk) == (
        builder_.build_order_hash(typed), builder_.build_order_signature(typed)
    )


def test_an_address_is_parsed_into_its_checksum_form_or_refused() -> None:
    from mmbot.venues.polymarket.auth import parse_address

    assert parse_address("0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266") == "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
    for bad in ("f39fd6e51aad88f6f4ce6ab8827279cfffb92266", "0x12", "0xzz" + "0" * 38, ""):
        with pytest.raises(SigningError, match="expected a 0x-prefixed 20-byte hex address"):
            parse_address(bad)


@pytest.mark.parametrize("key", ["0x1234", "0x" + "11" * 31, "0x" + "11" * 33, "0x" + "zz" * 32])
def test_a_private_key_that_is_not_32_bytes_of_hex_is_refused_without_echoing_it(key: str) -> None:
    """Defect: coincurve padded a short key with zeros, so ``MMBOT_PRIVATE_KEY=0x1234`` signed."""
    with pytest.raises(SigningError, match="not 32 bytes of hex") as refused:
        SigningKey(Secret(value=key))
    assert key.removeprefix("0x") not in str(refused.value)
