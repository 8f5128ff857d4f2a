"""The error module's docstring draws its tree: it must stay the code's tree."""

from __future__ import annotations

import inspect
import re

import providers.errors as errors

BRANCH = re.compile(r"[├└]── ([A-Z][A-Za-z]+)")  # a drawn class, after its branch


def _drawn_parents() -> dict[str, str]:
    """Each class drawn under the root, with the class drawn as its parent."""
    assert errors.__doc__ is not None
    parents: dict[str, str] = {}
    path: list[tuple[int, str]] = [(-1, "GatewayError")]  # (column of the branch, name)
    for line in errors.__doc__.splitlines():
        match = BRANCH.search(line)
        if match is None:
            continue
        column = match.start()
        while path[-1][0] >= column:
            path.pop()
        parents[match.group(1)] = path[-1][1]
        path.append((column, match.group(1)))
    return parents


def test_every_error_class_is_drawn_in_the_tree_under_its_parent():
    classes = {
        name: cls
        for name, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, errors.GatewayError) and cls is not errors.GatewayError
    }
    drawn = _drawn_parents()
    assert set(drawn) == set(classes)
    for name, cls in classes.items():
        assert drawn[name] == cls.__bases__[0].__name__, name


def test_status_and_code_belong_to_the_class_not_the_instance():
    for cls in [c for _, c in inspect.getmembers(errors, inspect.isclass)]:
        if issubclass(cls, errors.GatewayError) and "__init__" in vars(cls):
            source = inspect.getsource(cls.__init__)
            assert "self.code" not in source and "self.client_status" not in source, cls
