"""Every list endpoint paginates the same way: ?page=N&page_size=M (at most 500). A page or page size
that is not a positive whole number is a 400 naming the parameter; a page past the end is a 404."""

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination


def _positive(request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    if not (raw.isascii() and raw.isdigit()) or int(raw) < 1:
        raise ValidationError({name: [f"must be a whole number of at least 1, not {raw[:40]!r}"]})
    return int(raw)


class Pagination(PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 500

    def get_page_number(self, request, paginator):
        number = _positive(request, self.page_query_param)
        return 1 if number is None else number

    def get_page_size(self, request):
        size = _positive(request, self.page_size_query_param)
        return self.page_size if size is None else min(size, self.max_page_size)
