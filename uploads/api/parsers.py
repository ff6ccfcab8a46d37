"""The API's JSON parser: DRF's, with every unreadable body a 400."""

from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    """DRF's JSONParser. JSON nested deeper than Python's parser goes (e.g. 100,000 `[`)
    raised RecursionError, a 500; it is a parse error like any other."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - the body is nested too deeply.") from None
