"""The one table of JWS elliptic curves: JWK name, cryptography curve, component size, algorithm.

RFC 7518 §3.4 pairs each ECDSA algorithm with one curve and fixes the width
of R and S; §6.2.1.1 names the curves in JWKs ("crv"), §6.2.1.2 fixes the
width of the x and y coordinates, which is the same width. cryptography names
the same curves after SEC 2 (``secp256r1``, ...). Everything in jwtmint that
needs one of these facts reads it here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from cryptography.hazmat.primitives.asymmetric import ec

__all__ = ["CURVES", "CURVES_BY_SEC_NAME", "Curve"]


@dataclass(frozen=True)
class Curve:
    """One JWS curve and everything jwtmint needs to know about it."""

    #: JWK "crv" value (RFC 7518 §6.2.1.1).
    name: str
    #: cryptography's (SEC 2) name, ``key.curve.name``.
    sec_name: str
    curve_class: type[ec.EllipticCurve]
    #: Bytes of each of R and S (RFC 7518 §3.4) and of x and y (§6.2.1.2).
    size: int
    #: The only JWS algorithm that signs on this curve (RFC 7518 §3.4).
    algorithm: str

    def new(self) -> ec.EllipticCurve:
        """A cryptography curve instance, as key generation and derivation take it."""
        return self.curve_class()


_TABLE = (
    Curve("P-256", "secp256r1", ec.SECP256R1, 32, "ES256"),
    Curve("P-384", "secp384r1", ec.SECP384R1, 48, "ES384"),
    # 521 bits round up to 66 bytes, not 64: the one curve whose size is not its hash's
    Curve("P-521", "secp521r1", ec.SECP521R1, 66, "ES512"),
)

#: JWK curve name -> curve.
CURVES: Mapping[str, Curve] = MappingProxyType({curve.name: curve for curve in _TABLE})
#: cryptography's curve name (``key.curve.name``) -> curve.
CURVES_BY_SEC_NAME: Mapping[str, Curve] = MappingProxyType(
    {curve.sec_name: curve for curve in _TABLE}
)
