#!/usr/bin/env python3
"""Regenerates tests/conformance/<suite>/cases.tsv from the peer validators' own test files.

Usage:
    python3 tests/conformance/extract.py SUITE GIT_DIR
    python3 tests/conformance/extract.py braintree CREDIT_CARD_TYPE_GIT_DIR CARD_VALIDATOR_GIT_DIR

SUITE is one of the suites below; GIT_DIR is a git directory of the suite's repository (any
clone or bare snapshot that has the pinned commit; braintree's suite comes from two
repositories). The files are read with `git show COMMIT:PATH`, so the working tree does not
matter. The output is deterministic: the cases in the order the peer's file has them, each
distinct claim once (the first place that makes it is its source).

A case claims what the peer's test asserts about one number, in columns that are blank when
the peer says nothing (tests/conformance/README.md describes them):

    number  valid  network  length_valid  potentially_valid  candidates  peer_brand  source

`network` is one of our slugs (src/card/network.rs `slug()`), `unknown` (no network), or
`!slug` (the peer asserts the number is *not* that network). `peer_brand` is the peer's own
name for the brand, kept also where we have no such network (Dankort, Sodexo, Carnet, ...).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
COLUMNS = [
    "number",
    "valid",
    "network",
    "length_valid",
    "potentially_valid",
    "candidates",
    "peer_brand",
    "source",
]

SUITES = {
    "activemerchant": {
        "repo": "activemerchant/active_merchant",
        "commit": "ca45b1b063ce2e1495e1427e0a1d42dcb482d57d",
        "paths": ["test/unit/credit_card_methods_test.rb"],
    },
    "commons-validator": {
        "repo": "apache/commons-validator",
        "commit": "4dc42506f0714ebb74705347eb15c8cc79d26bb1",
        "paths": ["src/test/java/org/apache/commons/validator/routines/CreditCardValidatorTest.java"],
    },
    "php-credit-card-validator": {
        "repo": "inacho/php-credit-card-validator",
        "commit": "af3bab9af09dd159fbd23815ab08b1092d7fa963",
        "paths": ["tests/Test.php"],
    },
    "stripe-ios": {
        "repo": "stripe/stripe-ios",
        "commit": "31ee03d731a02d08ee2cc800d6f7472ba6e6e03e",
        "paths": ["Tests/Tests/STPCardValidatorTest.swift"],
    },
    # braintree's two repositories: CREDIT_CARD_TYPE and CARD_VALIDATOR below.
    "braintree": {},
}


def bool_text(value: bool | None) -> str:
    return "" if value is None else ("true" if value else "false")


class Cases:
    """The cases of one suite, each distinct claim once, in first-seen order."""

    def __init__(self) -> None:
        self.rows: list[dict[str, str]] = []
        self.seen: set[tuple[str, ...]] = set()

    def add(self, number: str, source: str, **claims: str | bool | None) -> None:
        row = {column: "" for column in COLUMNS}
        row["number"] = number
        row["source"] = source
        for key, value in claims.items():
            if key not in row:
                raise KeyError(key)
            row[key] = bool_text(value) if isinstance(value, bool) or value is None else value
        if not any(
            row[c] for c in ("valid", "network", "length_valid", "potentially_valid", "candidates", "peer_brand")
        ):
            raise ValueError(f"a case without a claim: {source}")
        key = tuple(row[c] for c in COLUMNS if c not in ("source", "peer_brand"))
        if key in self.seen:
            return
        self.seen.add(key)
        for column, text in row.items():
            if "\t" in text or "\n" in text:
                raise ValueError(f"tab or line break in {column} of {source}")
        self.rows.append(row)

    def write(self, path: Path) -> None:
        lines = ["\t".join(COLUMNS)]
        lines += ["\t".join(row[c] for c in COLUMNS) for row in self.rows]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def read_source(source: str, commit: str, path: str) -> str:
    """`path` at `commit` of the git directory `source`, or `source` itself when it is a file
    (that file, taken from that commit, for a repository too large to clone)."""
    if Path(source).is_file():
        return Path(source).read_text(encoding="utf-8")
    return subprocess.run(
        ["git", "--git-dir", source, "show", f"{commit}:{path}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


class Unhandled(Exception):
    """A line of the peer's file that asserts about a number but that no rule here reads."""


# ActiveMerchant ------------------------------------------------------------------------------

AM_BRANDS = {
    "visa": "visa",
    "master": "mastercard",
    "american_express": "american-express",
    "discover": "discover",
    "diners_club": "diners-club",
    "jcb": "jcb",
    "unionpay": "unionpay",
    "maestro": "maestro",
    "elo": "elo",
    "hipercard": "hipercard",
    "verve": "verve",
    "naranja": "naranja",
    "uatp": "uatp",
}


def am_network(brand: str, negated: bool = False) -> str:
    """Our slug for an ActiveMerchant brand; blank for brands we do not have (their name stays
    in peer_brand), since "Sodexo" says nothing about which of our networks a number is."""
    slug = AM_BRANDS.get(brand, "")
    if slug and negated:
        return "!" + slug
    return slug


def extract_activemerchant(text: str) -> Cases:
    cases = Cases()
    lines = text.splitlines()
    arrays: dict[str, list[str]] = {}
    # The %w[...] word lists the tests loop over, by the method that returns them.
    for match in re.finditer(r"def (\w+)\n\s*%w\[(.*?)\]\n\s*end", text, re.S):
        arrays[match.group(1)] = match.group(2).split()

    method = ""
    variables: dict[str, str] = {}
    skipped: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        lineno = i + 1
        i += 1
        src = f"credit_card_methods_test.rb:{lineno} {method}"
        if m := re.match(r"\s*def (\w+)", line):
            method = m.group(1)
            variables = {}
            continue
        if m := re.match(r"\s*(\w+) = '([\d ]+)'$", line):
            variables[m.group(1)] = m.group(2)
            continue
        # number literals or variables named in brand?/valid_number?/matching_brand?
        arg = r"(?:'([^']*)'|(\w+))"
        if m := re.match(rf"\s*assert_equal '([\w-]+)', CreditCard\.brand\?\({arg}\)(.*)$", line):
            brand, literal, var, rest = m.groups()
            if var is not None and var not in variables:
                # a loop variable: handled with its loop below
                if method not in AM_LOOPS:
                    raise Unhandled(f"{lineno}: {line.strip()}")
                continue
            number = literal if literal is not None else variables[var]
            cases.add(number, src, network=am_network(brand), peer_brand=brand)
            continue
        if m := re.match(rf"\s*assert_not_equal '([\w-]+)', CreditCard\.brand\?\({arg}\)", line):
            brand, literal, var = m.groups()
            if literal is None:
                if method not in AM_LOOPS:
                    raise Unhandled(f"{lineno}: {line.strip()}")
                continue
            cases.add(literal, src, network=am_network(brand, negated=True), peer_brand=f"not {brand}")
            continue
        if m := re.match(rf"\s*assert_nil CreditCard\.brand\?\({arg}\)", line):
            cases.add(m.group(1), src, network="unknown", peer_brand="none")
            continue
        if m := re.match(rf"\s*(assert|assert_true|assert_false) CreditCard\.valid_number\?\({arg}\)", line):
            kind, literal, var = m.groups()
            if literal is None and var not in variables:
                if var == "nil":
                    skipped.append(f"{lineno}: valid_number?(nil): Ruby's nil has no number")
                    continue
                if method not in AM_LOOPS:
                    raise Unhandled(f"{lineno}: {line.strip()}")
                continue
            number = literal if literal is not None else variables[var]
            cases.add(number, src, valid=(kind != "assert_false"))
            continue
        if m := re.match(r"\s*(assert|assert_false) CreditCard\.matching_brand\?\('([^']*)', '([\w-]+)'\)", line):
            kind, number, brand = m.groups()
            negated = kind == "assert_false"
            cases.add(number, src, network=am_network(brand, negated), peer_brand=("not " if negated else "") + brand)
            continue
        if ".frozen?" in line:
            skipped.append(f"{lineno}: checks that the brand string is not frozen")
            continue
        if re.search(r"brand\?|valid_number\?", line) and method not in AM_LOOPS:
            raise Unhandled(f"{lineno}: {line.strip()}")

    for method_name, handler in AM_LOOPS.items():
        start = text.index(f"def {method_name}")
        lineno = text.count("\n", 0, start) + 1
        handler(cases, arrays, text[start:], f"credit_card_methods_test.rb:{lineno} {method_name}", skipped)
    for note in skipped:
        print(f"activemerchant: skipped {note}", file=sys.stderr)
    return cases


def am_maestro_lists(cases: Cases, arrays: dict[str, list[str]], _body: str, src: str, _skipped: list[str]) -> None:
    for number in arrays["maestro_card_numbers"]:
        cases.add(number, src + " maestro_card_numbers", network="maestro", peer_brand="maestro")
    for bin_ in arrays["maestro_bins"]:
        cases.add(f"{bin_}0000000000", src + " maestro_bins", network="maestro", peer_brand="maestro")
    for number in arrays["non_maestro_card_numbers"]:
        cases.add(number, src + " non_maestro_card_numbers", network="!maestro", peer_brand="not maestro")


def am_growing(prefix: str, brand: str, first_len: int, last_len: int):
    """A test that appends zeros to `prefix`: the brand from first_len to last_len digits, not
    the brand one digit shorter or longer. `!` claims are left out where the number is too short
    or too long for any card: ActiveMerchant's brand? reads the length, our network does not (the
    length shows in length_valid)."""

    def handler(cases: Cases, _arrays, body: str, src: str, _skipped: list[str]) -> None:
        if f"'{prefix}" not in body:
            raise Unhandled(f"{src}: the test no longer starts from {prefix}")
        number = prefix
        cases.add(number, src, length_valid=False, peer_brand=f"not {brand}")
        while len(number) < last_len:
            number += "0"
            if len(number) >= first_len:
                cases.add(number, src, network=am_network(brand), peer_brand=brand)
        cases.add(number + "0", src, length_valid=False, peer_brand=f"not {brand}")

    return handler


def am_word_list_loop(brand: str, checks_valid: bool):
    def handler(cases: Cases, _arrays, body: str, src: str, _skipped: list[str]) -> None:
        words = re.search(r"%w\[(.*?)\]", body, re.S)
        if words is None:
            raise Unhandled(src)
        for number in words.group(1).split():
            cases.add(number, src, network=am_network(brand), peer_brand=brand)
            if checks_valid:
                cases.add(number, src, valid=True)

    return handler


def am_random(note: str):
    def handler(_cases: Cases, _arrays, _body: str, src: str, skipped: list[str]) -> None:
        skipped.append(f"{src}: {note}")

    return handler


def am_no_assertion(_cases: Cases, _arrays, body: str, src: str, skipped: list[str]) -> None:
    method = body[: body.index("\n  end\n")]
    if "assert" in method:
        raise Unhandled(f"{src}: now asserts; read its cases")
    skipped.append(f"{src}: asserts nothing (`all?` result unused), so its numbers claim nothing")


def am_electron(_cases: Cases, _arrays, _body: str, src: str, skipped: list[str]) -> None:
    skipped.append(f"{src}: tests electron?, a Visa sub-brand we do not answer")


AM_LOOPS = {
    "test_should_detect_maestro_cards": am_maestro_lists,
    "test_detecting_full_range_of_maestro_card_numbers": am_growing("63900000000", "maestro", 12, 19),
    "test_detecting_full_range_of_verve_card_numbers": am_growing("506099000000000", "verve", 16, 19),
    "test_matching_valid_naranja": am_word_list_loop("naranja", checks_valid=True),
    "test_carnet_cards": am_word_list_loop("carnet", checks_valid=False),
    "test_alia_number_not_validated": am_random("random numbers (rand), not reproducible"),
    "test_confiable_number_not_validated": am_random("random numbers (rand), not reproducible"),
    "test_maestro_no_luhn_number_not_validated": am_random("random numbers (rand), not reproducible"),
    "test_should_detect_verve": am_no_assertion,
    "test_electron_cards": am_electron,
}


# Apache Commons Validator ---------------------------------------------------------------------

CV_NETWORKS = {
    "AMEX": "american-express",
    "DINERS": "diners-club",
    "DISCOVER": "discover",
    "MASTERCARD": "mastercard",
    "VISA": "visa",
    "VPAY": "visa",
}

# Tests of validators built from custom ranges or regular expressions (not the library's card
# rules), and of helpers that take no card number.
CV_SKIPPED_TESTS = {
    "testAddAllowedCardType": "a validator that allows no card type",
    "testArrayConstructor": "a validator restricted to Visa and Amex",
    "testDisjointRange": "a validator built from a custom range",
    "testGenericValidatorCircularDependency": "checks an exception, not a number",
    "testMastercardUsingSeparators": "a custom regular expression with separators",
    "testRangeGenerator": "a validator built from custom ranges",
    "testRangeGeneratorNoLuhn": "a validator built from custom ranges",
    "testValidLength": "a length helper; no number",
}


def extract_commons_validator(text: str) -> Cases:
    cases = Cases()
    constants = dict(re.findall(r'private static final String (\w+) = "(\d*)";', text))
    lists = {
        name: [token.strip() for token in re.sub(r"//[^\n]*", "", body).split(",") if token.strip()]
        for name, body in re.findall(r"private static final String\[\] (\w+) = \{(.*?)\};", text, re.S)
    }

    def value(token: str) -> str:
        token = token.strip()
        if token.startswith('"'):
            return token.strip('"')
        return constants[token]

    method = ""
    validators: dict[str, tuple[str, str]] = {}  # variable -> (kind, network key)
    lines = text.splitlines()
    read_with_loop: set[int] = set()  # the body lines of the loops read as a whole
    for index, line in enumerate(lines):
        lineno = index + 1
        if index in read_with_loop:
            continue
        if m := re.match(r"\s*(?:public )?void (\w+)\(\)", line):
            method = m.group(1)
            validators = {}
            continue
        src = f"CreditCardValidatorTest.java:{lineno} {method}"
        if method in CV_SKIPPED_TESTS:
            continue
        if m := re.match(r"\s*final CodeValidator (\w+) = CreditCardValidator\.(\w+)_VALIDATOR;", line):
            validators[m.group(1)] = ("code", m.group(2))
            continue
        if m := re.match(
            r"\s*final CreditCardValidator (\w+) = new CreditCardValidator\(CreditCardValidator\.(\w+)\);", line
        ):
            validators[m.group(1)] = ("code", m.group(2))
            continue
        if m := re.match(r"\s*(?:final )?RegexValidator (\w+) = (\w+)\.getRegexValidator\(\);", line):
            validators[m.group(1)] = ("regex", validators[m.group(2)][1])
            continue
        if m := re.match(
            r"\s*(?:final )?CreditCardValidator (\w+) = CreditCardValidator\.genericCreditCardValidator\(\);", line
        ):
            validators[m.group(1)] = ("generic", "")
            continue
        if m := re.match(
            r"\s*(?:CreditCardValidator )?(\w+) = new CreditCardValidator\((CreditCardValidator\.AMEX)?\);", line
        ):
            # The default validator (Amex, Visa, Mastercard, Discover); one restricted to Amex
            # later in the same test is not read.
            validators[m.group(1)] = ("default", "") if m.group(2) is None else ("skip", "")
            continue
        if m := re.match(r'\s*final String pad = "(\d+)";', line):
            constants["pad"] = m.group(1)
            continue
        if m := re.match(r"\s*for \(final String s : (\w+)\) \{", line):
            check = lines[index + 1]
            cm = re.match(r"\s*(assertTrue|assertFalse)\((\w+)\.isValid\(s\), s\);", check)
            if cm is None:
                raise Unhandled(f"{lineno}: {line.strip()}")
            kind, var = validators[cm.group(2)]
            read_with_loop.add(index + 1)
            for number in lists[m.group(1)]:
                add_commons(cases, kind, "", value(number), cm.group(1) == "assertTrue", "", src + f" {m.group(1)}")
            continue
        if m := re.match(r"\s*for \(int i = (\d+); i <= (\d+); i\+\+\) \{", line):
            # 50,000 prefixes, all Mastercard: the two ends stand for them.
            kind, network = validators["rev"]
            read_with_loop.update((index + 1, index + 2))
            for prefix in (m.group(1), m.group(2)):
                add_commons(cases, kind, network, prefix + constants["pad"], True, "", src)
            continue
        m = re.match(r'\s*(assertTrue|assertFalse)\((\w+)\.isValid\((.*?)\)(?:, "([^"]*)")?\);', line)
        if m is None:
            m2 = re.match(r"\s*assertEquals\((\w+), (\w+)\.validate\((\w+)\)\);", line)
            if m2 and m2.group(1) == m2.group(3):
                kind, network = validators[m2.group(2)]
                add_commons(cases, kind, network, constants[m2.group(1)], True, "", src)
                continue
            m3 = re.match(r"\s*assertNull\((\w+)\.validate\((\w+)\)", line)
            if m3 and m3.group(1) in validators and m3.group(2) in constants:
                kind, network = validators[m3.group(1)]
                add_commons(cases, kind, network, constants[m3.group(2)], False, "ERROR_", src)
                continue
            if re.search(r"isValid\(|validate\(", line) and "null" not in line:
                raise Unhandled(f"{lineno}: {line.strip()}")
            continue
        assertion, var, arg, message = m.groups()
        if arg == "null" or var not in validators:
            continue
        if arg.startswith('"') and not re.fullmatch(r'"[^"]*"', arg):
            # "222099" + pad
            pm = re.fullmatch(r'"(\d+)" \+ pad', arg)
            if pm is None:
                raise Unhandled(f"{lineno}: {line.strip()}")
            number = pm.group(1) + constants["pad"]
        else:
            number = value(arg)
            if arg.startswith("ERROR_"):
                message = "ERROR_" + (message or "")
        kind, network = validators[var]
        add_commons(cases, kind, network, number, assertion == "assertTrue", message or "", src)
    return cases


def add_commons(cases: Cases, kind: str, network_key: str, number: str, holds: bool, message: str, src: str) -> None:
    """One assertion of a Commons Validator test, as claims about `number`.

    - `regex` (a network's pattern: prefix and length, no check digit): true means that
      network with a valid length; false with a "Length" message means a length the network
      does not issue, with a "Prefix" message (or a number past a range's end) not that
      network, with "Invalid Char" not a valid number.
    - `code` (a network's pattern and Luhn): true means a valid number of that network; false
      for an ERROR_ constant (a number the regex accepts) means an invalid one of that
      network, for another network's valid number means not that network.
    - `default` (Amex, Visa, Mastercard, Discover) and `generic` (Luhn and 12 to 19 digits
      only): valid or not.
    """
    network = CV_NETWORKS.get(network_key, "")
    brand = network_key.lower()
    if kind == "skip":
        return
    if kind in ("default", "generic"):
        cases.add(number, f"{src} {kind} validator", valid=holds)
        return
    if kind == "regex":
        if holds:
            cases.add(number, src, network=network, length_valid=True, peer_brand=brand)
        elif message.startswith("Length"):
            cases.add(number, src, network=network, length_valid=False, peer_brand=brand)
        elif message.startswith("Invalid Char"):
            cases.add(number, src, valid=False, peer_brand=brand)
        else:
            cases.add(number, src, network="!" + network, peer_brand=f"not {brand}")
        return
    if holds:
        cases.add(number, src, valid=True, network=network, peer_brand=brand)
    elif message.startswith("ERROR_"):
        cases.add(number, src, valid=False, network=network, peer_brand=brand)
    else:
        cases.add(number, src, network="!" + network, peer_brand=f"not {brand}")


# inacho/php-credit-card-validator -------------------------------------------------------------

PHP_BRANDS = {
    "visaelectron": "visa",
    "visa": "visa",
    "maestro": "maestro",
    "mastercard": "mastercard",
    "amex": "american-express",
    "dinersclub": "diners-club",
    "discover": "discover",
    "unionpay": "unionpay",
    "jcb": "jcb",
}


def extract_php(text: str) -> Cases:
    cases = Cases()
    block = re.search(r"protected \$validCards = array\((.*?)\n    \);", text, re.S)
    if block is None:
        raise Unhandled("$validCards")
    start_line = text.count("\n", 0, block.start()) + 1
    brand = ""
    for offset, line in enumerate(block.group(1).splitlines()):
        if m := re.match(r"\s*'(\w+)' => array\(", line):
            brand = m.group(1)
        elif m := re.match(r"\s*'(\d+)',", line):
            src = f"Test.php:{start_line + offset} testCardsTypes {brand}"
            cases.add(m.group(1), src, valid=True, network=PHP_BRANDS.get(brand, ""), peer_brand=brand)
    method = ""
    pending = None
    for index, line in enumerate(text.splitlines()):
        if m := re.match(r"\s*public function (\w+)\(", line):
            method = m.group(1)
        if m := re.match(r"\s*\$result = CreditCard::validCreditCard\('([^']*)'\);", line):
            pending = (m.group(1), index + 1)
        elif m := re.match(r"\s*\$this->assertEquals\((true|false), \$result\['valid'\]\);", line):
            if pending is None:
                raise Unhandled(f"{index + 1}: {line.strip()}")
            number, lineno = pending
            cases.add(number, f"Test.php:{lineno} {method}", valid=m.group(1) == "true")
            pending = None
    return cases


# stripe/stripe-ios -----------------------------------------------------------------------------

STRIPE_BRANDS = {
    "visa": "visa",
    "mastercard": "mastercard",
    "amex": "american-express",
    "discover": "discover",
    "dinersClub": "diners-club",
    "JCB": "jcb",
    "unionPay": "unionpay",
    "unknown": "unknown",
}

# STPCardValidationState as Validate's answers: complete and valid; could still become valid;
# can never become valid.
STRIPE_STATES = {
    "valid": {"valid": True},
    "incomplete": {"valid": False, "potentially_valid": True},
    "invalid": {"valid": False, "potentially_valid": False},
}


def extract_stripe_ios(text: str) -> Cases:
    """The numbers of testNumberValidation (states, with brand validation on, as a checkout
    form uses it) and testBrand; the asserts that turn brand validation off, and
    testCardValidation (expiry and CVC with the number), are not read."""
    cases = Cases()

    def line_of(index: int) -> str:
        return f"STPCardValidatorTest.swift:{text.count(chr(10), 0, index) + 1}"

    data = re.search(r"static let cardData.*?return \[(.*?)\n        \]", text, re.S)
    if data is None:
        raise Unhandled("cardData")
    card_data = list(re.finditer(r'\(\s*\.(\w+),\s*"([^"]*)",\s*\.(\w+)\s*\)', data.group(1)))
    for m in card_data:
        brand, number, state = m.groups()
        src = f"{line_of(data.start(1) + m.start())} cardData"
        cases.add(number, f"{src} testNumberValidation", **STRIPE_STATES[state])
        cases.add(number, f"{src} testBrand", network=STRIPE_BRANDS[brand], peer_brand=brand)
    for m in re.finditer(r'tests\.append\(\(\.(\w+), "([^"]*)"\)\)', text):
        cases.add(m.group(2), f"{line_of(m.start())} testNumberValidation", **STRIPE_STATES[m.group(1)])
    for name, state in (("badCardNumbers", "invalid"), ("possibleCardNumbers", "incomplete")):
        m = re.search(rf"let {name} = \[(.*?)\]", text, re.S)
        if m is None:
            raise Unhandled(name)
        for number in re.findall(r'"([^"]*)"', m.group(1)):
            cases.add(number, f"{line_of(m.start())} testNumberValidation {name}", **STRIPE_STATES[state])
    pattern = r'XCTAssertEqual\(\s*\.(\w+),\s*STPCardValidator\.validationState\(\s*forNumber: "([^"]*)", validatingCardBrand: true\)'
    for m in re.finditer(pattern, text):
        cases.add(m.group(2), f"{line_of(m.start())} testNumberValidation", **STRIPE_STATES[m.group(1)])
    return cases


# braintree -------------------------------------------------------------------------------------

CREDIT_CARD_TYPE = {
    "repo": "braintree/credit-card-type",
    "commit": "fbd8ed80a411fa9b238055208c19a7323cd38e21",
    "path": "src/__tests__/index.ts",
}
CARD_VALIDATOR = {
    "repo": "braintree/card-validator",
    "commit": "eb213089df9993be192282564d089d378460c63a",
    "path": "src/__tests__/card-number.ts",
}


def js_table(text: str, title: str) -> tuple[list, int]:
    """The array literal of the `it.each([...])` / `describe.each([...])` whose test title is
    `title`, as Python data, and the line it starts on. The tables hold only strings, numbers,
    booleans, null, arrays and objects with bare keys, so quoting the keys and dropping
    comments, trailing commas and a TypeScript `as` cast makes them JSON."""
    end = re.search(r"\](?: as [^\n]*?)?\)\(\s*" + re.escape(title), text).start()
    start = text.rindex(".each([", 0, end) + len(".each(")
    body = text[start : end + 1]
    body = re.sub(r"//[^\n]*", "", body)
    body = re.sub(r"(?<=[{,\s])(\w+):", r'"\1":', body)
    body = re.sub(r",(\s*[\]}])", r"\1", body)
    return json.loads(body), text.count("\n", 0, start) + 1


def extract_braintree(credit_card_type: str, card_validator: str) -> Cases:
    """credit-card-type's tables of single networks, candidate lists and unknown prefixes, and
    card-validator's table of numbers; their tests that pass options (maxLength,
    luhnValidateUnionPay, skipLuhnValidation) or check security codes are not read."""
    cases = Cases()
    single, line = js_table(credit_card_type, '"Matches %s to brand %s"')
    for number, network in single:
        cases.add(number, f"index.ts:{line} single", network=network, peer_brand=network)
    candidates, line = js_table(credit_card_type, '"Matches %s to array %p"')
    for number, networks in candidates:
        cases.add(number, f"index.ts:{line} candidates", candidates=";".join(sorted(networks)))
    unknown, line = js_table(credit_card_type, '"returns an empty array for %s"')
    for number in unknown:
        cases.add(number, f"index.ts:{line} unknown", network="unknown")
    groups, line = js_table(card_validator, '"Validator for %s"')
    for group, numbers in groups:
        for number, expected in numbers:
            if isinstance(number, (bool, dict, list)):
                continue  # `true`, `{}`, ... as the number: Validate takes a string
            number = str(number)  # a JavaScript number is read as its digits
            card = expected["card"]
            cases.add(
                number,
                f"card-number.ts:{line} {group}",
                valid=expected["isValid"],
                network=card or "unknown",
                potentially_valid=expected["isPotentiallyValid"],
                peer_brand=card or "",
            )
    return cases


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] not in SUITES or (len(argv) != 4) != (argv[1] != "braintree"):
        print(__doc__, file=sys.stderr)
        print("suites: " + ", ".join(SUITES), file=sys.stderr)
        return 2
    suite = argv[1]
    if suite == "braintree":
        cases = extract_braintree(
            read_source(argv[2], CREDIT_CARD_TYPE["commit"], CREDIT_CARD_TYPE["path"]),
            read_source(argv[3], CARD_VALIDATOR["commit"], CARD_VALIDATOR["path"]),
        )
    else:
        spec = SUITES[suite]
        text = read_source(argv[2], spec["commit"], spec["paths"][0])
        extract = {
            "activemerchant": extract_activemerchant,
            "commons-validator": extract_commons_validator,
            "php-credit-card-validator": extract_php,
            "stripe-ios": extract_stripe_ios,
        }[suite]
        cases = extract(text)
    out = HERE / suite / "cases.tsv"
    out.parent.mkdir(exist_ok=True)
    cases.write(out)
    print(f"{suite}: {len(cases.rows)} cases written to {out.relative_to(HERE.parent.parent)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
