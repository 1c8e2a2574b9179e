"""The workbench's vocabulary: every model, member, cascade, method and reference name is built and read here.

Nothing else in the package builds a name with an f-string or slices one: it asks this module, the way
transformers asks `AutoConfig` for a model type.

| name | what it is |
|---|---|
| `complete-2L` | a complete model: the first 2 layers of the run's backbone plus a head, all fine-tuned |
| `small-2L` | the same on the run's separate small backbone (`--small-model`) |
| `complete-2L-da` | trained with the difficulty-aware regularizer (also `small-2L-da`) |
| `deebert`, `pabee`, `probe` | multi-exit models, one exit after every layer; `deebert-da` with the regularizer |
| `cascade 1L>6L` | a cascade of complete models, smallest first (`cascade+DA 1L>6L`: its small members are `-da`) |
| `cascade small-1L>12L` | the same with members from the run's small backbone in front of the full model |
| `hybrid small-1L>deebert` | a small complete model, then DeeBERT on the run's backbone for the examples it passes on |
| `deebert with learned`, `cascade small-1L>12L with ensemble` | a method whose stop or deferral rule is a signal of `methods.signals` in place of its own confidence rule (`, risk 1,0.1` when the threshold comes from Learn-then-Test) |
| `static 6L` | the deepest complete model that reaches a target speed-up (the paper's BERT-kL) |
| `random escalation 1L>6L`, `oracle cascade 1L>6L`, `oracle ceiling 1L>6L` | reference lines of a two-member cascade |
| `oracle exit`, `random exit` | reference lines of early exit |

>>> cascade_label((1, 6), regularized=True)
'cascade+DA 1L>6L'
>>> parse_cascade('cascade+DA small-1L>12L')
(Cascade(depths=(1, 12), small=True), True)
>>> member_names((1, 2, 6), regularized=True)
('complete-1L-da', 'complete-2L-da', 'complete-6L')
>>> parse_model('small-2L-da')
ModelName(family='small', depth=2, regularized=True)
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

COMPLETE_FAMILIES = ("complete", "small")          # complete models of the run's backbone / the small backbone
MULTI_EXIT_KINDS = ("deebert", "pabee", "probe", "fastbert", "berxit", "mutual")  # one exit after every layer
JOINT_KINDS = ("pabee", "berxit", "mutual")       # trained jointly with their backbone, PABEE's architecture
LEARNED_WEIGHT_KINDS = ("mutual",)                # with learned per-exit loss weights
OBJECTIVES = ("berxit", "mutual")                 # multi-exit objectives a run trains only when asked
DA = "-da"                                         # suffix of models trained with the difficulty-aware regularizer

# Early-exit models the study evaluates, with their exit rules (their own first, the one the targets use).
EXIT_POLICIES: dict[str, tuple[str, ...]] = {"deebert": ("entropy", "maxprob"), "deebert-da": ("entropy", "maxprob"),
                                             "pabee": ("patience", "maxprob"), "fastbert": ("entropy", "maxprob"),
                                             "berxit": ("entropy", "maxprob"), "mutual": ("entropy", "maxprob")}
CASCADE_POLICIES = ("maxprob",)
SIGNALS = ("maxprob", "agreement", "averaged", "ensemble", "ztw", "learned")  # stop/deferral signals (methods.signals)
ESCALATION_REFERENCES = {"random": "random escalation", "oracle": "oracle cascade", "ceiling": "oracle ceiling"}
EXIT_REFERENCES = ("oracle exit", "random exit")
COMPLETE_CURVE = "complete kL"  # the complete models drawn as one curve over their depths

_MODEL = re.compile(r"^(?:(?P<family>complete|small)-(?P<depth>\d+)L|(?P<kind>" + "|".join(MULTI_EXIT_KINDS) + r"))"
                    r"(?P<da>-da)?$")
_PAIR = re.compile(r"^(?P<small>small-)?\d+L(?:>(?(small)small-)\d+L)*>\d+L$")
_CASCADE = re.compile(r"^cascade(?P<da>\+DA)? (?P<pair>\S+)$")
_SIGNAL = re.compile(r"^(?P<base>.+) with (?P<signal>[a-z]+)(?:, risk (?P<risk>\S+))?$")
_HYBRID = re.compile(r"^hybrid (?P<small>small-)?(?P<depth>\d+)L>deebert$")
SMALL_PREFIX = "small-"   # a member from the run's small backbone, in pair texts ('small-1L>12L')


@dataclass(frozen=True)
class ModelName:
    """A model name read back: its family, depth (complete models) and whether it carries the regularizer."""
    family: str         # 'complete' | 'small' | 'deebert' | 'pabee' | 'probe'
    depth: int | None   # layers of a complete model; None for multi-exit models
    regularized: bool   # trained with the difficulty-aware regularizer ('-da')

    def __str__(self) -> str:
        base = f"{self.family}-{self.depth}L" if self.depth is not None else self.family
        return base + (DA if self.regularized else "")

    @property
    def is_complete(self) -> bool:
        return self.family in COMPLETE_FAMILIES


# ----------------------------------------------------------------------------- models


def complete_name(depth: int, *, small: bool = False, regularized: bool = False) -> str:
    """'complete-<k>L', 'small-<k>L' (on the small backbone), with '-da' when regularized."""
    return str(ModelName("small" if small else "complete", int(depth), regularized))


def multi_exit_name(kind: str, *, regularized: bool = False) -> str:
    """'deebert', 'pabee', 'probe', with '-da' when regularized."""
    if kind not in MULTI_EXIT_KINDS:
        raise ValueError(f"multi-exit kind must be one of {MULTI_EXIT_KINDS}, got {kind!r}")
    return str(ModelName(kind, None, regularized))


def parse_model(name: str) -> ModelName:
    """Read a model name of the outputs table; a clear error for anything else."""
    found = _MODEL.match(str(name))
    if not found:
        raise ValueError(f"{name!r} is not a model name; expected e.g. 'complete-2L', 'small-2L', 'complete-2L-da', "
                         f"or one of {', '.join(MULTI_EXIT_KINDS)} (optionally with '-da')")
    depth = found["depth"]
    return ModelName(found["family"] or found["kind"], int(depth) if depth else None, bool(found["da"]))


def try_parse_model(name: str) -> ModelName | None:
    """:func:`parse_model`, or None for a name that is not a model's."""
    try:
        return parse_model(name)
    except ValueError:
        return None


def complete_depths(models: Iterable[str]) -> tuple[int, ...]:
    """Sorted depths of the plain complete models ('complete-<k>L') among `models`."""
    parsed = (try_parse_model(m) for m in models)
    return tuple(sorted({p.depth for p in parsed if p and p.family == "complete" and not p.regularized}))


def exit_rules(model: str) -> tuple[str, ...] | None:
    """The exit rules of an early-exit model, its own first ('deebert' -> entropy, maxprob); a variant such
    as 'pabee-da' takes its family's; None for a model that is not early exit."""
    if model in EXIT_POLICIES:
        return EXIT_POLICIES[model]
    parsed = try_parse_model(model)
    return EXIT_POLICIES.get(parsed.family) if parsed else None


# ----------------------------------------------------------------------------- cascades


def member_names(depths: Iterable[int], *, regularized: bool = False, small: bool = False) -> tuple[str, ...]:
    """Model names of a cascade's members; with `regularized`, non-final members are the -da models; with
    `small`, non-final members come from the run's small backbone ('small-<k>L')."""
    depths = tuple(depths)
    last = len(depths) - 1
    return tuple(complete_name(d, small=small and i < last, regularized=regularized and i < last)
                 for i, d in enumerate(depths))


@dataclass(frozen=True)
class Cascade:
    """A cascade's members by depth, smallest first; with `small`, every member but the last comes from the
    run's separate small backbone (`--small-model`), the last from its full backbone."""
    depths: tuple[int, ...]
    small: bool = False

    def members(self, *, regularized: bool = False) -> tuple[str, ...]:
        return member_names(self.depths, regularized=regularized, small=self.small)

    def label(self, *, regularized: bool = False) -> str:
        return cascade_label(self.depths, regularized=regularized, small=self.small)

    @property
    def pair(self) -> str:
        return pair_text(self.depths, small=self.small)


def pair_text(depths: Iterable[int], *, small: bool = False) -> str:
    """'1L>6L' for members of depths 1 and 6; 'small-1L>12L' when the non-final ones are of the small backbone."""
    depths = tuple(int(d) for d in depths)
    prefix = SMALL_PREFIX if small else ""
    return ">".join([f"{prefix}{d}L" for d in depths[:-1]] + [f"{depths[-1]}L"])


def parse_pair(text: str) -> Cascade:
    """The cascade of '1L>2L>6L' or 'small-1L>12L'; a clear error for anything else."""
    found = _PAIR.match(text)
    if not found:
        raise ValueError(f"cannot read the members {text!r}; write them as depths, e.g. '1L>6L', with 'small-' before "
                         "each non-final member of the small backbone, e.g. 'small-1L>12L'")
    small = bool(found["small"])
    return Cascade(tuple(int(part.removeprefix(SMALL_PREFIX)[:-1]) for part in text.split(">")), small)


def parse_depths_option(text: str) -> tuple[Cascade, ...]:
    """The `--cascades` option: '1>6,2>6,1>2>6' -> cascades of the run's backbone; an 's' marks the non-final
    members of the small backbone: 's1>12,s2>12' -> small-1L>12L, small-2L>12L."""
    cascades = []
    for part in text.split(","):
        members = part.strip().split(">")
        small = {m.startswith("s") for m in members[:-1]}
        try:
            if len(small) != 1 or members[-1].startswith("s"):
                raise ValueError
            cascades.append(Cascade(tuple(int(m.removeprefix("s")) for m in members), small.pop()))
        except ValueError:
            raise ValueError(f"--cascades: cannot read {part!r} in {text!r}; write member depths smallest first, "
                             "separated by '>', one cascade per comma, e.g. '1>6,2>6,1>2>6'; put 's' before every "
                             "non-final member of --small-model, e.g. 's1>12' (the last member is always the "
                             "full backbone's)") from None
    return tuple(cascades)


def cascade_label(depths: Iterable[int], *, regularized: bool = False, small: bool = False) -> str:
    """'cascade 1L>6L', or 'cascade+DA 1L>6L' when its non-final members carry the regularizer; 'cascade
    small-1L>12L' when they come from the small backbone."""
    return ("cascade+DA " if regularized else "cascade ") + pair_text(depths, small=small)


def parse_cascade(label: str) -> tuple[Cascade, bool] | None:
    """(cascade, regularized) of a cascade label; None when `label` is not one."""
    found = _CASCADE.match(str(label))
    if not found or not _PAIR.match(found["pair"]):
        return None
    return parse_pair(found["pair"]), bool(found["da"])


def cascade_of_members(members: Iterable[str]) -> tuple[Cascade, bool] | None:
    """(cascade, regularized) when `members` are exactly the members of a cascade of the run's backbone, or of
    the small backbone's members in front of it."""
    members = tuple(members)
    parsed = [try_parse_model(m) for m in members]
    if len(members) < 2 or not all(p and p.is_complete for p in parsed) or parsed[-1].family != "complete":
        return None
    depths = tuple(p.depth for p in parsed)
    for small in (False, True):
        for regularized in (False, True):
            if member_names(depths, regularized=regularized, small=small) == members:
                return Cascade(depths, small), regularized
    return None


def members_label(members: Iterable[str]) -> str:
    """The label of a cascade of `members`: 'cascade 1L>6L' (or 'cascade+DA 1L>6L') when they are the members of
    such a cascade, else 'cascade ' followed by the member names joined by '>'."""
    members = tuple(members)
    known = cascade_of_members(members)
    return known[0].label(regularized=known[1]) if known else "cascade " + ">".join(members)


def claims_cascade(label: str) -> bool:
    """True for a label that starts like a cascade's, readable or not (for error messages); a cascade with
    a signal's deferral rule is a signal method, not a plain cascade."""
    return str(label).startswith("cascade") and parse_signal_method(label) is None


def is_small_member(model: str) -> bool:
    """True for complete models of the separate small backbone ('small-<k>L')."""
    parsed = try_parse_model(model)
    return bool(parsed) and parsed.family == "small"


# ----------------------------------------------------------------------------- methods and references


def static_label(depth: int, *, small: bool = False) -> str:
    """'static <k>L': the complete k-layer model as an operating point ('static small-<k>L' on the small
    backbone)."""
    return f"static {SMALL_PREFIX if small else ''}{int(depth)}L"


def reference_label(kind: str, cascade: Cascade | Iterable[int]) -> str:
    """'random escalation 1L>6L', 'oracle cascade 1L>6L' or 'oracle ceiling 1L>6L' (kind random|oracle|ceiling)."""
    pair = cascade.pair if isinstance(cascade, Cascade) else pair_text(cascade)
    return f"{ESCALATION_REFERENCES[kind]} {pair}"


def hybrid_label(depth: int, *, small: bool = False) -> str:
    """'hybrid small-1L>deebert': a complete model of `depth` layers (of the small backbone with `small`), then
    DeeBERT on the full backbone for the examples it passes on."""
    return f"hybrid {SMALL_PREFIX if small else ''}{int(depth)}L>deebert"


def hybrid_members(label: str) -> tuple[str, str] | None:
    """('small-1L', 'deebert') of 'hybrid small-1L>deebert'; None when `label` is not a hybrid."""
    found = _HYBRID.match(str(label))
    return (complete_name(int(found["depth"]), small=bool(found["small"])), "deebert") if found else None


def signal_label(base: str, signal: str, *, risk: str | None = None) -> str:
    """'deebert with learned': method `base` ('deebert', 'cascade 1L>6L', ...) stopping on `signal`; with
    `risk` ('1,0.1') its threshold carries a Learn-then-Test guarantee."""
    return f"{base} with {signal}" + (f", risk {risk}" if risk else "")


def parse_signal_method(label: str) -> tuple[str, str, str | None] | None:
    """(base method, signal, risk text or None) of a signal method's label; None otherwise.

    >>> parse_signal_method('cascade small-1L>12L with learned, risk 1,0.1')
    ('cascade small-1L>12L', 'learned', '1,0.1')
    """
    found = _SIGNAL.match(str(label))
    return (found["base"], found["signal"], found["risk"]) if found else None


def parse_reference(label: str) -> tuple[str, str] | None:
    """(kind, pair text) of an escalation reference label; None otherwise."""
    for kind, prefix in ESCALATION_REFERENCES.items():
        if str(label).startswith(prefix + " "):
            return kind, str(label)[len(prefix) + 1:]
    return None


def is_reference(method: str) -> bool:
    """True for reference lines (random and oracle escalation or exit), which no real method reaches."""
    return method in EXIT_REFERENCES or parse_reference(method) is not None


def method_rank(method: str) -> int:
    """Order of methods in results tables: static, DeeBERT, PABEE, cascades, regularized cascades, hybrids,
    signal methods, others."""
    if str(method).startswith("static "):
        return 0
    if parse_signal_method(method):
        return 6
    parsed = try_parse_model(method)
    if parsed and parsed.family in ("deebert", "pabee"):
        return 1 if parsed.family == "deebert" else 2
    cascade = parse_cascade(method)
    if cascade:
        return 4 if cascade[1] else 3
    return 5 if hybrid_members(method) else 7


def display_name(model: str, layer: int) -> str:
    """A model's exit at `layer` in words, for figure legends: 'complete 1L + DA', 'DeeBERT exit 1', ..."""
    parsed = parse_model(model)
    if parsed.is_complete:
        return f"{parsed.family} {parsed.depth}L" + (" + DA" if parsed.regularized else "")
    words = {"deebert": "DeeBERT", "pabee": "PABEE", "probe": "probe (pre-trained)", "fastbert": "FastBERT",
             "berxit": "BERxiT", "mutual": "mutual distillation"}[
        parsed.family]
    return f"{words}{' + DA' if parsed.regularized else ''}{' exit' if parsed.family != 'probe' else ''} {layer}"
