"""POLY_1271 (deposit-wallet) order signing: every published vector of the onchain reference §3.4
(py-clob-client-v2's and Nautilus's, standard and neg-risk exchanges), the envelope's structure,
and the official V2 builder (py-clob-client-v2, test-only) as an oracle on generated orders."""

from __future__ import annotations

import pytest
from eth_hash.auto import keccak
from hypothesis import given, settings, strategies as st

from mmbot.config import Secret
from mmbot.model import Side
from mmbot.venues.polymarket.auth import (
    EOA, EXCHANGE_V2, NEG_RISK_EXCHANGE_V2, ORDER_V2_TYPE_STRING, POLY_1271, POLY_GNOSIS_SAFE, ZERO_BYTES32,
    OrderSigner, OrderV2, SigningError, SigningKey, domain_separator,
)
from mmbot.venues.polymarket.sign_1271 import (
    ENVELOPE_BYTES, TYPED_DATA_SIGN_TYPE, DepositWalletSigner, envelope_digest, open_envelope, split_envelope,
    wallet_words,
)

HARDHAT_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
HARDHAT_ADDRESS = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
KEY = SigningKey(Secret(value=HARDHAT_KEY))
WALLET = "0x1111111111111111111111111111111111111111"
TOKEN = 71321045679252212594626385532706912750332728571942532289631379312455583992563

# the ASCII Order type string and its uint16 length, as every published envelope ends
TYPE_TAIL_HEX = (
    "4f726465722875696e743235362073616c742c61646472657373206d616b65722c"
    "61646472657373207369676e65722c75696e7432353620746f6b656e49642c75"
    "696e74323536206d616b6572416d6f756e742c75696e743235362074616b6572"
    "416d6f756e742c75696e743820736964652c75696e7438207369676e61747572"
    "65547970652c75696e743235362074696d657374616d702c6279746573333220"
    "6d657461646174612c62797465733332206275696c6465722900ba"
)


def deposit_order(salt: int, token: int, ts: int, *, wallet: str = WALLET, side: Side = Side.BUY) -> OrderV2:
    return OrderV2(salt=salt, maker=wallet, signer=wallet, token_id=token, maker_amount=100000000,
                   taker_amount=50000000, side=side, signature_type=POLY_1271, timestamp_ms=ts)


# --------------------------------------------------------------------------- published vectors

# (source, chain ID, neg risk, salt, token, timestamp, order ID, wire signature) — the signatures
# exactly as published: py-clob-client-v2 tests/order_utils/test_exchange_order_builder_v2.py
# (EXPECTED_POLY_1271_SIGNATURE, chain 80002, exchange_v2 0xE111…996B) and Nautilus
# crates/adapters/polymarket/src/signing/eip712.rs (test_poly_1271_signature_matches_py_clob_client_v2)
PUBLISHED = [
    ("py-clob-client-v2", 80002, False, 479249096354, 1234, 1710000000000,
     "0x2afca94626db91b2d556c351584a4cd93e13da32e377dc48c7983e43afa5ab47",
     "0xa3a093c83b6c20c83355c16ce94c92e6e9fcbdeb840618cc74f6c57a42ad145b"
     "2b98db73d2c73cbf1f2b6af288566ae81960ddbc3a13921027358a8bff3be6ff1c"
     "a440cbd865bc0c6243d7a8df9a8bf48a8827b0a4abbb61c30e96d305423af148"
     "d23d42d3ad94e65d78258cecaf8dcbaddac0f73dc085040f2c12bb595dd83804" + TYPE_TAIL_HEX),
    ("nautilus standard", 137, False, 333333333, TOKEN, 1713398400000,
     "0x48cfd4c03dcee72230750e2dc5ea71048e91244c2a9fec2ed6ef790a74869596",
     "0x780beffb568c4510b8a135a92ca8071f124cf368fb0e902fe451c5f51e555791"
     "0a2a87968caa08a242de85e83c27375fc09242e897aa77680f56622a54e6e7c"
     "61c3264e159346253e26a64e00b69032db0e7d32f94628de3e6eecb50304d"
     "7af3d2d3db4f9eed41f0490532a9460395d96602c6534a931bde4f0e3aad5"
     "71e4f84a04f726465722875696e743235362073616c742c6164647265737320"
     "6d616b65722c61646472657373207369676e65722c75696e7432353620746f"
     "6b656e49642c75696e74323536206d616b6572416d6f756e742c75696e7432"
     "35362074616b6572416d6f756e742c75696e743820736964652c75696e7438"
     "207369676e6174757265547970652c75696e743235362074696d657374616d"
     "702c62797465733332206d657461646174612c62797465733332206275696c"
     "6465722900ba"),
    ("nautilus neg-risk", 137, True, 333333333, TOKEN, 1713398400000,
     "0x82b94b9d570fdd7b07f517ea848606a9b74029f2387fbf07d8b9c856d652e608",
     "0xa411986b67c58113f8787ee54c41def9376d57ef4262b56438438710720604b7"
     "00137e0175d7ae6afc40c2988179ad84b1b71a739f0974c8df3c12372f31b22c"
     "1c9b858f53327b0bd13af8ec14cfb35234fb9eb7b0504d1a4e61f433840d3"
     "0e81ad3db4f9eed41f0490532a9460395d96602c6534a931bde4f0e3aad571"
     "e4f84a04f726465722875696e743235362073616c742c61646472657373206d"
     "616b65722c61646472657373207369676e65722c75696e7432353620746f6b"
     "656e49642c75696e74323536206d616b6572416d6f756e742c75696e743235"
     "362074616b6572416d6f756e742c75696e743820736964652c75696e743820"
     "7369676e6174757265547970652c75696e743235362074696d657374616d70"
     "2c62797465733332206d657461646174612c62797465733332206275696c64"
     "65722900ba"),
]


@pytest.mark.parametrize("source, chain_id, neg_risk, salt, token, ts, order_id, signature", PUBLISHED,
                         ids=[row[0] for row in PUBLISHED])
def test_every_published_poly_1271_vector(source, chain_id, neg_risk, salt, token, ts, order_id, signature) -> None:
    signer = DepositWalletSigner(KEY, WALLET, chain_id=chain_id)
    order = deposit_order(salt, token, ts)
    assert signer.sign(order, neg_risk=neg_risk) == (order_id, signature)
    # the order ID is the plain order's digest, as an EOA-path signer of the same chain computes it
    assert OrderSigner(KEY, chain_id=chain_id).order_id(order, neg_risk=neg_risk) == order_id
    assert signer.order_id(order, neg_risk=neg_risk) == order_id


def test_the_reference_parts_of_each_vector() -> None:
    """The type hash, the py-clob-client-v2 vector's TypedDataSign digest, and the domain separators
    and contents the reference lists for the Nautilus vectors."""
    assert TYPED_DATA_SIGN_TYPE.hex() == "6ba028565cb324c2aa02bb714b9816d0bddd557a2f33bb36cf13272a4256bd42"
    amoy = domain_separator("Polymarket CTF Exchange", "2", 80002, EXCHANGE_V2)
    order = deposit_order(479249096354, 1234, 1710000000000)
    assert envelope_digest(amoy, order.struct_hash(), wallet_words(WALLET, 80002)).hex() == (
        "c31d535831b64decf4687570628e5765c218fc3c4a7b582c7bd3105525f76a8c")
    nautilus = deposit_order(333333333, TOKEN, 1713398400000)
    assert nautilus.struct_hash().hex() == "d3db4f9eed41f0490532a9460395d96602c6534a931bde4f0e3aad571e4f84a0"
    assert domain_separator("Polymarket CTF Exchange", "2", 137, EXCHANGE_V2).hex() == (
        "3264e159346253e26a64e00b69032db0e7d32f94628de3e6eecb50304d7af3d2")
    assert domain_separator("Polymarket CTF Exchange", "2", 137, NEG_RISK_EXCHANGE_V2).hex() == (
        "9b858f53327b0bd13af8ec14cfb35234fb9eb7b0504d1a4e61f433840d30e81a")


# --------------------------------------------------------------------------- the envelope


@pytest.mark.parametrize("neg_risk", [False, True])
def test_the_envelope_is_317_bytes_laid_out_as_solady_reads_it(neg_risk: bool) -> None:
    signer = DepositWalletSigner(KEY, WALLET)
    order = deposit_order(42, TOKEN, 1713398400000, side=Side.SELL)
    order_id, signature = signer.sign(order, neg_risk=neg_risk)
    assert ENVELOPE_BYTES == 317 and len(signature) == 2 + 2 * 317 and signature.startswith("0x")
    raw = bytes.fromhex(signature[2:])
    domain = domain_separator("Polymarket CTF Exchange", "2", 137, NEG_RISK_EXCHANGE_V2 if neg_risk else EXCHANGE_V2)
    assert raw[64] in (27, 28)
    assert raw[65:97] == domain
    assert raw[97:129] == order.struct_hash()
    assert raw[129:315] == ORDER_V2_TYPE_STRING and len(ORDER_V2_TYPE_STRING) == 186
    assert raw[315:317] == b"\x00\xba"
    parts = split_envelope(signature)
    assert (parts.signature, parts.domain, parts.contents, parts.type_string) == (
        raw[:65], raw[65:97], raw[97:129], raw[129:315])
    # the inner signature is the owner's over the TypedDataSign digest, not over the order ID
    assert open_envelope(order, signature, domain) == HARDHAT_ADDRESS
    assert KEY.sign(envelope_digest(domain, order.struct_hash(), wallet_words(WALLET))) == "0x" + raw[:65].hex()
    assert KEY.sign(bytes.fromhex(order_id[2:])) != "0x" + raw[:65].hex()
    # the wallet's domain words: DepositWallet, 1, chain, the wallet, salt 0
    assert wallet_words(WALLET) == (keccak(b"DepositWallet") + keccak(b"1") + (137).to_bytes(32, "big")
                                    + bytes(12) + bytes.fromhex(WALLET[2:]) + bytes(32))


def test_a_tampered_or_misshapen_envelope_is_refused() -> None:
    signer = DepositWalletSigner(KEY, WALLET)
    order = deposit_order(7, TOKEN, 1713398400000)
    domain = domain_separator("Polymarket CTF Exchange", "2", 137, EXCHANGE_V2)
    neg_domain = domain_separator("Polymarket CTF Exchange", "2", 137, NEG_RISK_EXCHANGE_V2)
    _, signature = signer.sign(order)
    raw = bytearray(bytes.fromhex(signature[2:]))
    with pytest.raises(SigningError, match="another exchange"):
        open_envelope(order, signature, neg_domain)
    with pytest.raises(SigningError, match="contents"):
        open_envelope(deposit_order(8, TOKEN, 1713398400000), signature, domain)
    with pytest.raises(SigningError, match="317 bytes"):
        split_envelope(signature[:-2])
    with pytest.raises(SigningError, match="317 bytes"):
        split_envelope(signature[2:])
    with pytest.raises(SigningError, match="length"):
        split_envelope("0x" + bytes(raw[:-2] + b"\x00\xbb").hex())
    bad_type = bytearray(raw)
    bad_type[129] = ord("o")
    with pytest.raises(SigningError, match="type string"):
        open_envelope(order, "0x" + bad_type.hex(), domain)
    bad_v = bytearray(raw)
    bad_v[64] = 1
    with pytest.raises(SigningError, match="v = 1"):
        open_envelope(order, "0x" + bad_v.hex(), domain)
    # another wallet's order under the same key recovers another (wrong) owner
    flipped = bytearray(raw)
    flipped[5] ^= 1
    assert open_envelope(order, "0x" + flipped.hex(), domain) != HARDHAT_ADDRESS
    other = DepositWalletSigner(SigningKey(Secret(value="0x" + "01" * 32)), WALLET)
    assert open_envelope(order, other.sign(order)[1], domain) == other.key.address != HARDHAT_ADDRESS


def test_orders_a_deposit_wallet_cannot_sign_are_refused() -> None:
    beacon = "0x94bF330955A0b957662fEaF878dE77bf25f76cD9"
    lower = DepositWalletSigner(KEY, beacon.lower())  # the wallet is kept checksummed, compared in any case
    assert lower.wallet == beacon and lower.signer_address == beacon
    same = [lower.sign(deposit_order(1, TOKEN, 1, wallet=wallet)) for wallet in (beacon, beacon.lower())]
    assert same[0] == same[1]
    signer = DepositWalletSigner(KEY, WALLET)
    assert OrderSigner(KEY).signer_address == HARDHAT_ADDRESS
    assert isinstance(signer, OrderSigner) and HARDHAT_KEY[2:] not in repr(signer) + repr(vars(signer))
    base = deposit_order(1, TOKEN, 1)
    for wrong in (EOA, POLY_GNOSIS_SAFE):
        with pytest.raises(SigningError, match="POLY_1271"):
            signer.sign(OrderV2(**{**_fields(base), "signature_type": wrong}))
    with pytest.raises(SigningError, match="deposit wallet"):
        signer.sign(OrderV2(**{**_fields(base), "maker": HARDHAT_ADDRESS}))
    with pytest.raises(SigningError, match="deposit wallet"):
        signer.sign(OrderV2(**{**_fields(base), "signer": HARDHAT_ADDRESS}))
    with pytest.raises(SigningError, match="address"):
        DepositWalletSigner(KEY, "0x1234")
    # and the EOA-path signer still refuses a POLY_1271 order, pointing here
    with pytest.raises(SigningError, match="DepositWalletSigner"):
        OrderSigner(KEY).sign(OrderV2(**{**_fields(base), "maker": HARDHAT_ADDRESS, "signer": HARDHAT_ADDRESS}))


def _fields(order: OrderV2) -> dict[str, object]:
    return {name: getattr(order, name) for name in (
        "salt", "maker", "signer", "token_id", "maker_amount", "taker_amount", "side", "signature_type",
        "timestamp_ms", "metadata", "builder")}


# --------------------------------------------------------------------------- the official builder as oracle


@pytest.mark.filterwarnings("ignore:The recursion limit will not be reset")  # eth-account's parser, in the oracle
@settings(max_examples=40, deadline=None)
@given(
    salt=st.integers(0, 2**64), token=st.integers(0, 2**256 - 1), maker_amount=st.integers(0, 10**15),
    taker_amount=st.integers(0, 10**15), side=st.sampled_from(Side), ts=st.integers(1, 2**48),
    wallet=st.binary(min_size=20, max_size=20), builder=st.binary(min_size=32, max_size=32),
    metadata=st.binary(min_size=32, max_size=32), neg_risk=st.booleans(), chain_id=st.sampled_from([137, 80002]),
)
def test_signatures_equal_the_official_v2_builder(salt, token, maker_amount, taker_amount, side, ts, wallet, builder,
                                                  metadata, neg_risk, chain_id) -> None:
    """Their ``build_signed_order`` on ``OrderDataV2(signatureType=POLY_1271)``, through
    ``_build_poly_1271_order_signature``: the same order ID and the same 317 bytes."""
    official = pytest.importorskip("py_clob_client_v2.order_utils.exchange_order_builder_v2")
    from py_clob_client_v2.order_utils.model.order_data_v2 import OrderDataV2
    from py_clob_client_v2.order_utils.model.signature_type_v2 import SignatureTypeV2
    from py_clob_client_v2.signer import Signer

    address = "0x" + wallet.hex()
    exchange = NEG_RISK_EXCHANGE_V2 if neg_risk else EXCHANGE_V2
    builder_ = official.ExchangeOrderBuilderV2(exchange, chain_id, Signer(HARDHAT_KEY, chain_id),
                                               generate_salt=lambda: str(salt))
    theirs = builder_.build_signed_order(OrderDataV2(
        maker=address, signer=address, tokenId=str(token), makerAmount=str(maker_amount),
        takerAmount=str(taker_amount), side=0 if side is Side.BUY else 1, signatureType=SignatureTypeV2.POLY_1271,
        timestamp=str(ts), metadata="0x" + metadata.hex(), builder="0x" + builder.hex()))
    ours = OrderV2(salt=salt, maker=address, signer=address, token_id=token, maker_amount=maker_amount,
                   taker_amount=taker_amount, side=side, signature_type=POLY_1271, timestamp_ms=ts,
                   metadata="0x" + metadata.hex(), builder="0x" + builder.hex())
    signer = DepositWalletSigner(KEY, address, chain_id=chain_id)
    assert signer.sign(ours, neg_risk=neg_risk) == (
        builder_.build_order_hash(builder_.build_order_typed_data(theirs)), theirs.signature)


@pytest.mark.parametrize("neg_risk", [False, True])
def test_the_official_clients_deposit_wallet_orders_equal_ours(neg_risk: bool) -> None:
    """The official high-level path — ``OrderBuilder(signature_type=POLY_1271, funder=wallet)`` —
    names the wallet as maker and signer; signing its order ourselves gives its signature."""
    builder_module = pytest.importorskip("py_clob_client_v2.order_builder.builder")
    from py_clob_client_v2.clob_types import CreateOrderOptions, OrderArgsV2
    from py_clob_client_v2.order_utils.model.signature_type_v2 import SignatureTypeV2
    from py_clob_client_v2.signer import Signer

    wallet = "0x94bF330955A0b957662fEaF878dE77bf25f76cD9"
    official = builder_module.OrderBuilder(Signer(HARDHAT_KEY, 137), SignatureTypeV2.POLY_1271, funder=wallet)
    theirs = official.build_order(OrderArgsV2(token_id=str(TOKEN), price=0.57, size=25.0, side="BUY"),
                                  CreateOrderOptions(tick_size="0.01", neg_risk=neg_risk))
    assert (theirs.maker, theirs.signer, int(theirs.signatureType)) == (wallet, wallet, POLY_1271)
    ours = OrderV2(salt=int(theirs.salt), maker=theirs.maker, signer=theirs.signer, token_id=int(theirs.tokenId),
                   maker_amount=int(theirs.makerAmount), taker_amount=int(theirs.takerAmount), side=Side.BUY,
                   signature_type=POLY_1271, timestamp_ms=int(theirs.timestamp), metadata=ZERO_BYTES32,
                   builder=theirs.builder)
    assert (ours.maker_amount, ours.taker_amount) == (14250000, 25000000)
    assert DepositWalletSigner(KEY, wallet).sign(ours, neg_risk=neg_risk)[1] == theirs.signature


def test_the_gateway_signs_a_deposit_wallet_order_with_the_wallet_as_maker_and_signer() -> None:
    """The gateway takes maker and signer from its signer: a ``DepositWalletSigner`` makes both the
    wallet, and the order's wire form carries the 317-byte envelope."""
    import random as _random

    from mmbot.config import VenueConfig
    from mmbot.model import MarketInfo, Side, TimeInForce
    from mmbot.model.messages import SubmitRequest
    from mmbot.venues.polymarket.auth import POLY_1271
    from mmbot.venues.polymarket.gateway import LiveGateway

    class Clock:
        def now_ns(self) -> int:
            return 1_786_604_100 * 10**9

    class NoSink:
        def record(self, *args: object, **kwargs: object) -> None:
            pass

    info = MarketInfo(market="0x" + "11" * 32, tokens=("1001", "1002"), outcomes=("Yes", "No"))
    signer = DepositWalletSigner(KEY, WALLET)
    gateway = LiveGateway(rest=None, signer=signer, owner="key", markets={"1001": info}.get,  # type: ignore[arg-type]
                          respond=lambda answer: None, sink=NoSink(), clock=Clock(), rng=_random.Random(1),
                          config=VenueConfig(), signature_type=POLY_1271)
    request = SubmitRequest(cid="c", order_id="o1", market=info.market, token="1001", side=Side.BUY,
                            price=500_000, size=10_000_000, tif=TimeInForce.GTC, post_only=True)
    wire = gateway.body(request)["order"]
    assert wire["maker"].lower() == wire["signer"].lower() == WALLET.lower()
    assert wire["signatureType"] == POLY_1271
    assert len(bytes.fromhex(wire["signature"].removeprefix("0x"))) == 317
