"""The token cursor under the fakes' little query parsers (Xero's ``where``, QuickBooks'
``select``): tokens with their kind, text and position, and a cursor that reads them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Token:
    kind: str  # string | char | number | ident | op | end
    text: str
    pos: int


class TokenCursor:
    """Reads ``tokens`` left to right; the last token is always ``end`` and is never passed."""

    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.i = 0

    def peek(self, offset: int = 0) -> Token:
        return self.tokens[min(self.i + offset, len(self.tokens) - 1)]

    def take(self) -> Token:
        token = self.peek()
        self.i += 1
        return token

    def is_op(self, text: str, offset: int = 0) -> bool:
        token = self.peek(offset)
        return token.kind == "op" and token.text == text

    def is_word(self, word: str, offset: int = 0) -> bool:
        """An identifier, case-insensitively (``word`` in lower case)."""
        token = self.peek(offset)
        return token.kind == "ident" and token.text.lower() == word
