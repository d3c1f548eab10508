"""Class codes: the short name of a class in its link (``?class=7b-tokens``).

A teacher may pick a code (easy to say, easy to guess: fine for a class that does not mind),
or let the app make one: an adjective, a noun and six random digits from ``secrets``,
e.g. ``brave-otter-482913``. That is 256 x 256 x 1,000,000 = 6.6e10 codes (36 bits): someone
trying a hundred codes a second against a server with a thousand open classes needs about a
week on average to land in any class at all.

>>> normalize_code("  7B-Tokens ")
'7b-tokens'
>>> code_problem("7b tokens")
'A class code may hold only letters a-z, digits and hyphens (no spaces); “7b tokens” has other characters.'
>>> code_problem("7b-tokens") is None
True
>>> bool(CODE_FORMAT.match(make_code()))
True
"""

from __future__ import annotations

import math
import re
import secrets

MIN_CODE_CHARS = 3
MAX_CODE_CHARS = 40
CODE_FORMAT = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")
RANDOM_DIGITS = 6

ADJECTIVES = tuple(
    """
    able agile airy amber ample apt aqua azure balmy bold brave breezy bright brisk broad
    bubbly busy calm candid chatty cheery chief chill civil clean clear clever cloudy comfy
    cool copper bumpy cosy crafty crisp curly curved cyan daring dawn dear deep deft dewy
    dizzy dotted dreamy dusty eager early earthy easy elder elfin epic even exact fair fancy
    fast fearless festive fine firm first fleet fluffy flying fond free fresh frisky frosty
    funny fuzzy gentle giant giddy glad gleaming glossy golden good grand grassy great green
    handy happy hardy hasty sweet hearty helpful hidden honest hopeful humble icy ideal jade
    jazzy jolly joyful juicy jumpy keen kind large lavish lazy leafy level light lilac lively
    lone long loud loyal lucky lunar lush magic major mellow merry mighty mild minty misty
    modern modest moonlit mossy musical narrow neat nimble noble novel oaken odd chirpy open
    orange orderly patient peachy perfect pink plain playful plucky plush polite proud quick
    quiet rainy rapid rare ready regal rich ripe robust rocky rosy round royal ruby rustic
    sandy sharp shiny silent silky silver simple sleek sleepy slow smart smooth snappy snowy
    snug soft solar solid sonic sparkly speedy spicy spotted spry starry steady stormy strong
    sturdy sunny super sure swift tall tame teal tender thrifty tidy tiny topaz tranquil
    trusty tidal twin upbeat urban valiant velvet vivid warm watery wavy wild windy wise witty
    wooden woolly young zany zesty zippy brainy chunky cosmic dapper fabled fiery floral
    frugal gifted hilly jovial kindly dashing bouncy crunchy dainty glowing peppy sunlit twinkly
    """.split()
)

NOUNS = tuple(
    """
    acorn album alpaca anchor ant apple apricot arch arrow aspen atlas badger bagel balloon
    bamboo banana banjo barn basil basket beacon beagle bean bear beaver bee beetle bell bench
    berry bison blossom boat bonsai book boot bramble bridge brook bubble bucket buffalo bunny
    butter button cabin cactus camel canal candle canoe canyon cape carrot castle cedar cello
    chalk cherry chess chime cider circle cliff clock clover cobalt cocoa comet compass cookie
    coral cotton cougar crane crater cricket crow crown cub cupcake daisy delta desert dingo
    dolphin donkey dove dragon drum duck dune eagle echo eel elk elm ember falcon fawn feather
    fern ferret fig finch fjord flame flute forest fossil fox frog gazelle gecko geyser ginger
    giraffe glacier globe goat goose grape gull hamster harbor harp hawk hazel hedgehog heron
    hill hippo honey horizon hornet husky ibis iceberg igloo island ivy jackal jaguar jasmine
    jelly jetty kayak kettle kite kiwi koala lagoon lake lantern lark lemon lemur leopard lily
    lime lion lizard llama lobster locket lotus lynx magnet mango maple marble meadow melon
    meteor mint mitten mole moose moth mountain muffin narwhal nest newt nutmeg oak oasis ocean
    olive orbit orca orchid otter owl oyster paddle panda panther parrot peach peacock pebble
    pelican penguin pepper piano pigeon pine planet plum pony poppy prairie puffin pumpkin quail
    quartz rabbit raccoon radish rain raven reef river robin rocket sage salmon sardine seal
    sequoia shell sloth snail sparrow spruce squid star stork summit swan teapot thistle tiger
    toucan trail tulip turtle valley violet walrus whale willow wombat yak zebra
    """.split()
)


def normalize_code(code: str) -> str:
    """What a typed or linked code means: spaces around it dropped, capitals made small."""
    return str(code).strip().lower()


def code_problem(code: str) -> str | None:
    """Why ``code`` (already normalized) cannot be a class code, or None when it can."""
    if not code:
        return "Type the class code your teacher gave you (for example 7b-tokens)."
    if len(code) < MIN_CODE_CHARS:
        return f"A class code has at least {MIN_CODE_CHARS} characters; “{code}” has {len(code)}."
    if len(code) > MAX_CODE_CHARS:
        return f"A class code has at most {MAX_CODE_CHARS} characters; this one has {len(code)}."
    if not CODE_FORMAT.match(code):
        if code.startswith("-") or code.endswith("-"):
            return f"A class code starts and ends with a letter or a digit, not a hyphen: “{code}”."
        return (
            "A class code may hold only letters a-z, digits and hyphens (no spaces); "
            f"“{code}” has other characters."
        )
    return None


def make_code() -> str:
    """A new hard-to-guess code: adjective-noun-six digits, all drawn with ``secrets``."""
    digits = secrets.randbelow(10**RANDOM_DIGITS)
    return f"{secrets.choice(ADJECTIVES)}-{secrets.choice(NOUNS)}-{digits:0{RANDOM_DIGITS}d}"


def code_bits() -> float:
    """How many bits of randomness a made code has."""
    return math.log2(len(set(ADJECTIVES))) + math.log2(len(set(NOUNS))) + RANDOM_DIGITS * math.log2(10)
