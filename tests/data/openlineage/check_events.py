#!/usr/bin/env python3
"""check_events.py FILE: checks each line of FILE (meshd --openlineage
events) against the OpenLineage 2-0-2 schema, and each dataQualityAssertions
facet in it against its facet schema (both next to this script).

Exit 0 all valid; 1 a line is invalid (each error printed with its line);
77 python3-jsonschema is missing (the caller skips, saying so)."""
import json
import os
import sys

try:
    import jsonschema
except ImportError:
    print("python3-jsonschema is not installed (apt-get install python3-jsonschema)")
    sys.exit(77)

HERE = os.path.dirname(os.path.abspath(__file__))


def load(name):
    with open(os.path.join(HERE, name), encoding="utf-8") as f:
        return json.load(f)


CORE = load("OpenLineage.json")
FACET = load("DataQualityAssertionsDatasetFacet.json")


def validator(schema):
    """A 2020-12 validator that resolves the core spec's URL locally and
    checks formats (date-time, uuid, uri where the checkers exist)."""
    cls = jsonschema.Draft202012Validator
    checker = cls.FORMAT_CHECKER
    try:
        from referencing import Registry, Resource
        registry = Registry().with_resources(
            [(CORE["$id"], Resource.from_contents(CORE)), (FACET["$id"], Resource.from_contents(FACET))])
        return cls(schema, registry=registry, format_checker=checker)
    except ImportError:  # jsonschema before 4.18 (Debian 12's 4.10)
        resolver = jsonschema.RefResolver.from_schema(schema, store={CORE["$id"]: CORE, FACET["$id"]: FACET})
        return cls(schema, resolver=resolver, format_checker=checker)


def main():
    core, facet = validator(CORE), validator(FACET)
    bad = 0
    with open(sys.argv[1], encoding="utf-8") as f:
        lines = f.read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for n, line in enumerate(lines, 1):
        try:
            event = json.loads(line)
        except ValueError as e:
            print(f"line {n}: not JSON: {e}")
            bad += 1
            continue
        errors = list(core.iter_errors(event))
        for ds in event.get("outputs", []) + event.get("inputs", []):
            dq = ds.get("facets", {}).get("dataQualityAssertions")
            if dq is not None:
                errors += list(facet.iter_errors({"dataQualityAssertions": dq}))
        for e in errors:
            print(f"line {n}: {e.message} at {list(e.absolute_path)}")
        bad += bool(errors)
    print(f"{len(lines)} events, {bad} invalid")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
