"""Deterministic generator of simple, TinyStories-like short stories.

This is a stand-in for TinyStories (Eldan & Li, 2023), which cannot be fetched
in the offline build environment. Stories use a small vocabulary and the
typical shape of TinyStories: an opening ("Once upon a time..."), a main
character with a favourite object or activity, a problem, some dialogue, a
resolution and a closing line or moral. Variety comes from many plots, each
with several phrasings per beat, and from large pools of names, animals,
places, objects, feelings and helpers, so that a small language model cannot
simply memorise a handful of templates.

All randomness comes from one ``random.Random(seed)``: the same ``(n, seed)``
always gives the same stories, and ``generate_stories(n, s)`` is a prefix of
``generate_stories(m, s)`` for ``m > n``.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

logger = logging.getLogger(__name__)

GIRL_NAMES = (
    "Lily", "Mia", "Sue", "Anna", "Emma", "Lucy", "Sara", "Ella", "Zoe", "Amy",
    "Rose", "Kate", "Maya", "Ruby", "Chloe", "Grace", "Nora", "Ivy", "Daisy",
    "Molly", "Jane", "Lila", "Tina", "Hannah", "Sophie", "Ava", "Bella", "Poppy",
    "Lucy", "Kim", "Nina", "Eva", "Julia", "Alice", "Amber", "Clara",
)
BOY_NAMES = (
    "Tom", "Ben", "Max", "Sam", "Jack", "Tim", "Leo", "Joe", "Finn", "Jake",
    "Noah", "Eli", "Luke", "Ryan", "Adam", "Oscar", "Henry", "Owen", "Dan",
    "Billy", "Theo", "Milo", "Alex", "Kevin", "Bob", "Jim", "Peter", "Lucas",
    "Mark", "Toby", "Hugo", "Paul", "Ned", "Roy",
)
PET_NAMES = (
    "Spot", "Fluffy", "Whiskers", "Bubbles", "Pip", "Coco", "Buddy", "Rex",
    "Sunny", "Pepper", "Patch", "Benny", "Tiny", "Mittens", "Ziggy", "Honey",
    "Nutmeg", "Rusty", "Polly", "Ollie", "Dot", "Biscuit", "Snowy", "Button",
    "Peanut", "Shadow", "Bingo", "Daisy", "Fuzzy", "Rosie",
)
ANIMALS = (
    "cat", "dog", "bunny", "bear", "bird", "duck", "fox", "frog", "mouse",
    "puppy", "kitten", "pig", "owl", "squirrel", "turtle", "lion", "elephant",
    "monkey", "horse", "cow", "sheep", "hen", "deer", "goat", "penguin",
    "hedgehog", "tiger", "zebra", "giraffe", "panda",
)
KID_ADJ = (
    "little", "happy", "curious", "shy", "brave", "kind", "silly", "playful",
    "small", "cheerful", "friendly", "clever", "gentle", "busy", "sleepy",
    "funny", "polite", "lively",
)
PLACES = (
    "the park", "the garden", "the forest", "the beach", "the farm",
    "the backyard", "the lake", "the big hill", "the meadow", "the zoo",
    "the playground", "the library", "the river", "the woods", "the field",
    "the pond", "the market", "the town square", "the school yard",
    "the old barn", "the sandbox", "the kitchen", "the living room",
)
OUTDOOR_PLACES = (
    "the park", "the garden", "the forest", "the beach", "the farm",
    "the backyard", "the lake", "the big hill", "the meadow", "the playground",
    "the river", "the woods", "the field", "the pond", "the school yard",
)
COLORS = (
    "red", "blue", "green", "yellow", "pink", "purple", "orange", "white",
    "black", "brown", "gold", "silver",
)
OBJ_ADJ = (
    "shiny", "soft", "big", "small", "pretty", "new", "old", "round", "fluffy",
    "sparkly", "tiny", "special", "bright", "funny", "fast",
)
OBJECTS = (
    "ball", "kite", "toy car", "doll", "teddy bear", "hat", "stone", "book",
    "box", "balloon", "boat", "crayon", "shell", "bike", "drum", "blanket",
    "key", "map", "cup", "scarf", "train", "robot", "truck", "jar", "bell",
    "feather", "flower", "ribbon", "whistle", "spoon", "bucket", "kite",
    "puzzle", "necklace", "rock", "leaf", "sock", "button", "star", "wagon",
)
FLYING_OBJECTS = ("kite", "balloon", "hat", "ball", "ribbon", "paper plane", "scarf", "frisbee")
HIGH_SPOTS = (
    "a tall tree", "the roof of the shed", "the top of a fence", "a high branch",
    "the top of the swing set", "a big bush", "the old lamp post",
)
HELPERS = (
    "mom", "dad", "grandma", "grandpa", "big sister", "big brother", "aunt",
    "uncle", "teacher",
)
HAPPY = ("happy", "glad", "joyful", "excited", "proud", "cheerful", "thrilled")
SAD = ("sad", "upset", "unhappy", "worried", "gloomy", "grumpy")
SCARY_THINGS = (
    ("the dark", "when the lights went out at night"),
    ("thunder", "when the sky went grey and loud"),
    ("the big slide", "at the playground"),
    ("the deep water", "at the lake"),
    ("the big dog next door", "every time it barked"),
    ("the tall ladder", "in the barn"),
    ("the noisy vacuum", "in the house"),
    ("bees", "in the garden"),
    ("the first day of school", "in the morning"),
    ("the big waves", "at the beach"),
)
SKILLS = (
    ("ride a bike", "rode the bike all the way down the path", "fell off the bike", "the bike wobbled"),
    ("swim", "swam across the pool", "sank and splashed", "the water got in {his} eyes"),
    ("climb the tree", "climbed to the top of the tree", "slipped down", "the bark was too smooth"),
    ("tie {his} shoes", "tied {his} shoes", "made a big knot", "the laces got mixed up"),
    ("fly a kite", "flew the kite high in the sky", "watched the kite fall", "the wind was too quiet"),
    ("jump rope", "jumped ten times without stopping", "tripped on the rope", "the rope hit {his} feet"),
    ("bake a cake", "baked a yummy cake", "made the cake too flat", "the flour went everywhere"),
    ("skate", "skated across the ice", "fell on the ice", "{his} feet slid apart"),
    ("whistle", "whistled a happy tune", "only made a little puff", "no sound came out"),
    ("draw a horse", "drew a beautiful horse", "made the legs too long", "the horse looked like a dog"),
    ("read a big book", "read the whole book", "got stuck on a long word", "the words looked hard"),
    ("catch a ball", "caught the ball", "missed the ball", "the ball bounced away"),
)
FOODS = (
    "cookies", "cake", "apples", "pie", "candy", "soup", "bread", "berries",
    "muffins", "pancakes", "carrots", "ice cream", "sandwiches", "grapes",
)
MESSES = (
    ("paint", "painted a picture", "paint on the floor and on the walls"),
    ("mud", "played in the mud", "mud all over the floor"),
    ("flour", "tried to bake", "flour all over the kitchen"),
    ("toys", "played with all {his} toys", "toys everywhere in the room"),
    ("water", "played with the hose", "water all over the porch"),
    ("glitter", "made a card", "glitter on the table and the chairs"),
    ("leaves", "jumped in the leaves", "leaves all over the path"),
)
HIDING_SPOTS = (
    "under the bed", "behind the couch", "in the tall grass", "under a big leaf",
    "next to the tree", "inside a box", "under the table", "in the sand",
    "behind a rock", "under the bench", "in the toy box", "by the door",
)
WISHES = (
    ("a big cake for everyone", "a big cake with pink frosting"),
    ("a warm coat for the old man", "a warm red coat"),
    ("flowers for the whole town", "flowers of every color"),
    ("a new home for the birds", "a tiny wooden house"),
    ("rain for the thirsty garden", "soft rain"),
    ("a smile for {his} sad friend", "a funny song"),
    ("toys for all the children", "a pile of toys"),
)
MAGIC_FINDS = (
    "a shiny stone", "a golden key", "a tiny fairy", "a talking tree",
    "a magic hat", "a glowing shell", "a little star", "a wishing well",
)
WEATHER = (
    "The sun was shining.", "It was a warm and sunny day.", "The sky was blue and clear.",
    "It was a windy day.", "It was a cool morning.", "The birds were singing.",
    "There were big white clouds in the sky.", "It was a bright day in spring.",
    "It was a cold winter day.", "The leaves were red and yellow.",
)


@dataclass
class Who:
    """A story character with the pronouns needed by the templates."""

    name: str  # how the story refers to the character ("Lily", "Mom", "the owl")
    intro: str  # first mention ("a little girl named Lily")
    he: str
    him: str
    his: str
    animal: bool = False


def _a(word: str) -> str:
    """Prefix ``word`` with the right indefinite article."""
    return ("an " if word[:1].lower() in "aeiou" else "a ") + word


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:] if text else text


def _pronouns(girl: bool) -> tuple[str, str, str]:
    return ("she", "her", "her") if girl else ("he", "him", "his")


def _make_hero(rng: random.Random) -> Who:
    girl = rng.random() < 0.5
    he, him, his = _pronouns(girl)
    adj = rng.choice(KID_ADJ)
    if rng.random() < 0.3:
        animal = rng.choice(ANIMALS)
        name = rng.choice(PET_NAMES)
        intro = rng.choice((
            f"{_a(adj)} {animal} named {name}",
            f"{_a(adj)} {animal} called {name}",
            f"{_a(animal)} named {name}",
        ))
        return Who(name, intro, he, him, his, animal=True)
    name = rng.choice(GIRL_NAMES if girl else BOY_NAMES)
    kid = "girl" if girl else "boy"
    intro = rng.choice((
        f"{_a(adj)} {kid} named {name}",
        f"{_a(adj)} {kid} called {name}",
        f"a {kid} named {name}",
        f"{_a(adj)} little {kid} named {name}" if adj not in ("little", "small") else f"a little {kid} named {name}",
    ))
    return Who(name, intro, he, him, his)


def _make_friend(rng: random.Random, hero: Who) -> Who:
    girl = rng.random() < 0.5
    he, him, his = _pronouns(girl)
    if hero.animal or rng.random() < 0.25:
        animal = rng.choice(ANIMALS)
        name = rng.choice(PET_NAMES)
        while name == hero.name:
            name = rng.choice(PET_NAMES)
        return Who(name, f"{_a(animal)} named {name}", he, him, his, animal=True)
    pool = GIRL_NAMES if girl else BOY_NAMES
    name = rng.choice(pool)
    while name == hero.name:
        name = rng.choice(pool)
    return Who(name, f"{'a girl' if girl else 'a boy'} named {name}", he, him, his)


def _make_helper(rng: random.Random, hero: Who) -> Who:
    if hero.animal:
        animal = rng.choice(("owl", "bear", "turtle", "elephant", "goat", "horse"))
        girl = rng.random() < 0.5
        he, him, his = _pronouns(girl)
        return Who(f"the old {animal}", f"a wise old {animal}", he, him, his, animal=True)
    role = rng.choice(HELPERS)
    girl = role in ("mom", "grandma", "big sister", "aunt") or (role == "teacher" and rng.random() < 0.5)
    he, him, his = _pronouns(girl)
    if role in ("mom", "dad", "grandma", "grandpa"):
        return Who(_cap(role), f"{hero.his} {role}", he, him, his)  # "Mom" used as a name
    return Who(f"{hero.his} {role}", f"{hero.his} {role}", he, him, his)


def _make_object(rng: random.Random, choices: Sequence[str] = OBJECTS) -> str:
    noun = rng.choice(choices)
    r = rng.random()
    if r < 0.4:
        return f"{rng.choice(COLORS)} {noun}"
    if r < 0.75:
        return f"{rng.choice(OBJ_ADJ)} {noun}"
    return f"{rng.choice(OBJ_ADJ)} {rng.choice(COLORS)} {noun}"


class _Story:
    """Collects sentences into paragraphs and fills pronoun placeholders."""

    def __init__(self, rng: random.Random, hero: Who, friend: Who, helper: Who) -> None:
        self.rng = rng
        self.hero = hero
        self.friend = friend
        self.helper = helper
        self.paragraphs: list[list[str]] = [[]]

    def fmt(self, text: str, **extra: str) -> str:
        h, f, g = self.hero, self.friend, self.helper
        values = {
            "name": h.name, "he": h.he, "him": h.him, "his": h.his,
            "He": _cap(h.he), "His": _cap(h.his),
            "friend": f.name, "fhe": f.he, "fhim": f.him, "fhis": f.his,
            "Fhe": _cap(f.he), "Fhis": _cap(f.his),
            "helper": g.name, "ghe": g.he, "ghim": g.him, "ghis": g.his,
            "Ghe": _cap(g.he), "Helper": _cap(g.name),
        }
        values.update(extra)
        # Nested placeholders (e.g. "{his}" inside an extra value) are filled too.
        for _ in range(2):
            text = text.format(**values)
        return _cap(text)

    def say(self, *options: str, **extra: str) -> None:
        """Append one of ``options`` (chosen with the story's rng)."""
        self.paragraphs[-1].append(self.fmt(self.rng.choice(options), **extra))

    def maybe(self, p: float, *options: str, **extra: str) -> None:
        if self.rng.random() < p:
            self.say(*options, **extra)

    def para(self) -> None:
        if self.paragraphs[-1]:
            self.paragraphs.append([])

    def text(self) -> str:
        return "\n\n".join(" ".join(p) for p in self.paragraphs if p)


# --- shared beats -----------------------------------------------------------

def _opening(s: _Story, place: str) -> None:
    intro = s.hero.intro
    s.say(
        "Once upon a time, there was " + intro + ".",
        "Once upon a time, in a small town, there lived " + intro + ".",
        "Once upon a time, near " + place + ", there lived " + intro + ".",
        "One day, " + intro + " went to " + place + ".",
        "There was once " + intro + ".",
        "Long ago, there was " + intro + " who lived near " + place + ".",
        "Once there was " + intro + ".",
    )


def _likes(s: _Story, obj: str, place: str) -> None:
    s.maybe(
        0.85,
        "{name} loved to play at {place}.",
        "{name} liked to run and jump and laugh all day.",
        "{He} had {a_obj} that {he} loved very much.",
        "{His} favorite toy was {a_obj}.",
        "Every day, {he} played with {his} {obj}.",
        "{name} was always very {adj} and liked to help.",
        "{He} liked to sing songs and pick flowers.",
        "{name} and {his} {obj} went everywhere together.",
        place=place, obj=obj, a_obj=_a(obj), adj=s.rng.choice(KID_ADJ),
    )


def _weather(s: _Story) -> None:
    s.maybe(0.35, s.rng.choice(WEATHER))


def _closing(s: _Story, moral: Sequence[str], **extra: str) -> None:
    s.para()
    if moral:
        s.say(*moral, **extra)
    s.maybe(
        0.8,
        "From that day on, {name} was never {sad} again.",
        "And they all lived happily ever after.",
        "{name} smiled a big smile.",
        "It was the best day ever.",
        "{name} and {friend} became best friends.",
        "That night, {name} went to sleep with a happy heart.",
        "{name} hugged {friend} and said, \"Thank you!\"",
        "The end.",
        "They played together until the sun went down.",
        "{name} felt warm and {happy} inside.",
        sad=s.rng.choice(SAD), happy=s.rng.choice(HAPPY),
    )


# --- plots ------------------------------------------------------------------

def _plot_lost(s: _Story, place: str) -> None:
    obj = _make_object(s.rng)
    spot = s.rng.choice(HIDING_SPOTS)
    _likes(s, obj, place)
    _weather(s)
    s.para()
    s.say(
        "One day, {name} went to {place} with {his} {obj}.",
        "One morning, {name} took {his} {obj} to {place}.",
        "One day, {name} and {friend} played at {place} with the {obj}.",
        place=place, obj=obj,
    )
    s.say(
        "When it was time to go home, the {obj} was gone!",
        "After a while, {he} looked down and the {obj} was not there.",
        "But then {he} could not find {his} {obj} anywhere.",
        obj=obj,
    )
    s.say(
        "{name} felt very {sad}. \"Where is my {obj}?\" {he} cried.",
        "\"Oh no! I lost my {obj}!\" said {name}. {He} was very {sad}.",
        "{name} began to cry. \"My {obj} is lost!\"",
        obj=obj, sad=s.rng.choice(SAD),
    )
    s.para()
    s.say(
        "{friend} saw {name} crying and came over. \"Don't cry. I will help you look,\" said {friend}.",
        "{Helper} heard {him} and said, \"Let's look for it together.\"",
        "Just then, {friend} came by. \"What is wrong?\" {fhe} asked. \"I lost my {obj},\" said {name}. \"I can help!\" said {friend}.",
        obj=obj,
    )
    s.say(
        "They looked under the slide. They looked in the grass. They looked near the trees.",
        "They looked high and low.",
        "They looked everywhere, but they did not see it.",
        "They walked slowly and looked at every spot.",
    )
    s.say(
        "At last, {friend} saw something {color} {spot}. It was the {obj}!",
        "Then {name} saw something {spot}. It was {his} {obj}!",
        "At last, they found the {obj} {spot}.",
        obj=obj, spot=spot, color=obj.split()[0],
    )
    s.say(
        "{name} was so {happy}. \"Thank you for helping me!\" {he} said.",
        "\"Yay! We found it!\" {name} shouted, and {he} jumped up and down.",
        "{name} held the {obj} tight and smiled.",
        obj=obj, happy=s.rng.choice(HAPPY),
    )
    _closing(s, (
        "{name} learned to always take care of {his} things.",
        "{name} learned that friends help each other when things go wrong.",
        "From then on, {name} always kept {his} {obj} close.",
    ), obj=obj)


def _plot_stuck(s: _Story, place: str) -> None:
    obj = _make_object(s.rng, FLYING_OBJECTS)
    high = s.rng.choice(HIGH_SPOTS)
    place = s.rng.choice(OUTDOOR_PLACES)
    _likes(s, obj, place)
    s.para()
    s.say(
        "One windy day, {name} was playing with {his} {obj} at {place}.",
        "One day, {name} took {his} {obj} to {place} to play.",
        "{name} and {friend} went to {place} to play with the {obj}.",
        obj=obj, place=place,
    )
    s.say(
        "Suddenly, a big gust of wind came. Whoosh! The {obj} flew up and got stuck on {high}.",
        "{He} threw it up high, too high! The {obj} landed on {high}.",
        "Oh no! The {obj} went up and got stuck on {high}.",
        obj=obj, high=high,
    )
    s.say(
        "{name} jumped and jumped, but {he} was too small to reach it.",
        "{name} tried to reach it with a stick, but the stick was too short.",
        "{He} stood on {his} toes and stretched, but it was no use.",
    )
    s.say(
        "\"I want my {obj} back,\" {he} said in a {sad} voice.",
        "\"What can I do?\" {name} asked.",
        "{name} sat down and felt {sad}.",
        obj=obj, sad=s.rng.choice(SAD),
    )
    s.para()
    s.say(
        "Then {helper} came to help. {Ghe} was tall and strong. {Ghe} reached up and got the {obj} down.",
        "Then a bird flew down. \"I can help!\" said the bird. It pulled the {obj} free with its beak.",
        "{friend} had an idea. \"Let's get the ladder!\" They held the ladder together and {name} climbed up carefully.",
        "{friend} said, \"If you stand on my back, you can reach it.\" {name} did, and {he} grabbed the {obj}.",
        obj=obj,
    )
    s.say(
        "\"Thank you so much!\" said {name}.",
        "{name} clapped {his} hands. \"We did it!\"",
        "{name} gave a big hug and said thank you.",
    )
    _closing(s, (
        "{name} learned that working together makes hard things easy.",
        "After that, {name} played far away from the trees.",
        "Now {name} knew that it is good to ask for help.",
    ))


def _plot_share(s: _Story, place: str) -> None:
    obj = _make_object(s.rng)
    _likes(s, obj, place)
    s.para()
    s.say(
        "One day, {friend} came to play. {Fhe} saw the {obj} and said, \"Can I play with it, please?\"",
        "At {place}, {name} met {friend}. \"Can I have a turn with your {obj}?\" {friend} asked.",
        "One day, {name} was playing with {his} {obj} when {friend} walked by. \"That looks fun! Can I try?\" {fhe} asked.",
        obj=obj, place=place,
    )
    s.say(
        "\"No! It is mine!\" said {name}, and {he} held it close.",
        "{name} did not want to share. \"No, you will break it,\" {he} said.",
        "\"Go away. I want to play alone,\" said {name}.",
    )
    s.say(
        "{friend} looked {sad} and walked away.",
        "{friend} was {sad}. {Fhe} sat on a bench all alone.",
        "Tears came to {friend}'s eyes.",
        sad=s.rng.choice(SAD),
    )
    s.para()
    s.say(
        "{name} played alone, but it was not fun anymore.",
        "Soon {name} felt a funny feeling in {his} tummy. It was not a good feeling.",
        "{name} looked at {friend}. {He} did not feel happy at all.",
    )
    s.maybe(
        0.7,
        "{Helper} saw what happened. \"How would you feel if someone did not share with you?\" {ghe} asked.",
        "{name} thought about how {friend} felt.",
    )
    s.say(
        "{name} walked over to {friend}. \"I am sorry. Do you want to play with my {obj}?\"",
        "{name} ran to {friend} and said, \"Here, you can have a turn. Let's play together!\"",
        "\"I'm sorry,\" said {name}. \"We can share the {obj}.\"",
        obj=obj,
    )
    s.say(
        "{friend} smiled a big smile. They took turns and laughed and played all day.",
        "{friend} was so {happy}. Playing together was much more fun than playing alone.",
        "They played with the {obj} together, and it was the most fun ever.",
        obj=obj, happy=s.rng.choice(HAPPY),
    )
    _closing(s, (
        "{name} learned that sharing makes everyone happy.",
        "From that day on, {name} always shared {his} toys.",
        "Sharing is caring, and {name} knew it now.",
    ))


def _plot_fear(s: _Story, place: str) -> None:
    thing, when = s.rng.choice(SCARY_THINGS)
    _likes(s, _make_object(s.rng), place)
    s.para()
    s.say(
        "But {name} had one problem. {He} was scared of {thing}.",
        "{name} was afraid of {thing}, especially {when}.",
        "There was one thing {name} did not like: {thing}.",
        thing=thing, when=when,
    )
    s.say(
        "Every time, {he} would hide and shake.",
        "\"I don't like {thing},\" {he} would whisper.",
        "{He} would close {his} eyes and hold {his} blanket tight.",
        thing=thing,
    )
    s.para()
    s.say(
        "One day, {helper} sat down next to {him}. \"Why are you scared?\" {ghe} asked.",
        "{Helper} saw that {name} was scared. {Ghe} gave {him} a big hug.",
        "{friend} came and held {his} hand. \"I am here with you,\" said {friend}.",
    )
    s.say(
        "\"{Thing} cannot hurt you,\" {ghe} said softly. \"Let's look at it together.\"",
        "\"Being brave does not mean you are not scared. It means you try anyway,\" said {helper}.",
        "\"I was scared too, when I was little,\" said {helper}. \"Take a deep breath.\"",
        Thing=_cap(thing),
    )
    s.say(
        "{name} took a deep breath. {He} counted to three and tried.",
        "{name} held on tight and took one small step.",
        "{name} was still a little scared, but {he} did it anyway.",
    )
    s.say(
        "It was not so bad after all! It was even fun.",
        "Nothing bad happened. {name} started to smile.",
        "{name} laughed. \"That was not scary at all!\"",
    )
    _closing(s, (
        "{name} learned that being brave is not so hard when you have a friend.",
        "Now {name} was not scared of {thing} anymore.",
        "{name} felt very brave and very proud.",
    ), thing=thing)


def _plot_broken(s: _Story, place: str) -> None:
    obj = _make_object(s.rng)
    _likes(s, obj, place)
    s.para()
    s.say(
        "One day, {friend} was playing with the {obj} and dropped it. Crack! It broke.",
        "One day, {name} was running with {his} {obj}. {He} tripped, and the {obj} broke.",
        "One day, the {obj} fell off the table. Snap! It broke into two pieces.",
        obj=obj,
    )
    s.say(
        "{name} started to cry. \"My {obj} is broken!\"",
        "{name} was very {sad}. {He} did not know what to do.",
        "\"Oh no!\" said {name}. {His} eyes filled with tears.",
        obj=obj, sad=s.rng.choice(SAD),
    )
    s.maybe(
        0.6,
        "\"I am so sorry,\" said {friend}. \"I did not mean to.\"",
        "{friend} looked at the floor. \"It was an accident,\" {fhe} said.",
    )
    s.para()
    s.say(
        "{Helper} came and looked at the {obj}. \"Don't worry. We can fix it,\" {ghe} said.",
        "{Helper} got some glue and tape. \"Let's fix it together,\" {ghe} said.",
        "{friend} had an idea. \"Let's fix it with glue!\"",
        obj=obj,
    )
    s.say(
        "They worked slowly and carefully. Soon the {obj} was as good as new.",
        "They put the pieces together. The {obj} had a little line on it, but it worked!",
        "It took a long time, but at last the {obj} was fixed.",
        obj=obj,
    )
    s.say(
        "{name} was so {happy}. {He} hugged {helper}.",
        "\"Thank you!\" said {name}. \"Now it is even more special.\"",
        "{name} smiled and played with the {obj} again.",
        obj=obj, happy=s.rng.choice(HAPPY),
    )
    _closing(s, (
        "{name} learned that broken things can be fixed with a little help.",
        "{name} learned to be gentle with {his} toys.",
        "{name} learned that it is okay when accidents happen.",
    ))


def _plot_skill(s: _Story, place: str) -> None:
    skill, did, fail, why = s.rng.choice(SKILLS)
    _likes(s, _make_object(s.rng), place)
    s.para()
    s.say(
        "{name} wanted to learn to {skill}.",
        "More than anything, {name} wanted to {skill}.",
        "{name} saw {friend} {skill_done} and wanted to do it too.",
        skill=skill, skill_done=_progressive(skill),
    )
    s.say(
        "{He} tried, but {he} {fail}.",
        "The first time {he} tried, {why}, and {he} {fail}.",
        "{He} tried once, twice, three times. Each time, {he} {fail}.",
        fail=fail, why=why,
    )
    s.say(
        "\"I can't do it!\" {name} said. {He} felt {sad}.",
        "{name} wanted to give up. \"It is too hard,\" {he} said.",
        "{name} sat down with a frown.",
        sad=s.rng.choice(SAD),
    )
    s.para()
    s.say(
        "{Helper} smiled. \"Everyone falls at first. Try again, little by little.\"",
        "{friend} said, \"Don't give up! I will help you.\"",
        "\"Practice makes it better,\" said {helper}. \"Let's try one more time.\"",
    )
    s.say(
        "So {name} tried again, and again, and again.",
        "{name} practiced every day after lunch.",
        "{name} took a deep breath and tried one more time.",
    )
    s.say(
        "And then, at last, {he} {did}! \"I did it!\" {he} shouted.",
        "This time, it worked. {name} {did} all by {himself}!",
        "Finally, {name} could do it. {He} {did} and laughed.",
        did=did, himself="herself" if s.hero.he == "she" else "himself",
    )
    _closing(s, (
        "{name} learned that if you keep trying, you can do hard things.",
        "{name} learned to never give up.",
        "{name} was so proud of {himself}.",
    ), himself="herself" if s.hero.he == "she" else "himself")


def _progressive(skill: str) -> str:
    verb, _, rest = skill.partition(" ")
    special = {"ride": "riding", "swim": "swimming", "tie": "tying", "bake": "baking",
               "skate": "skating", "whistle": "whistling", "jump": "jumping"}
    ing = special.get(verb, verb + "ing")
    return (ing + " " + rest).strip()


def _plot_hurt_animal(s: _Story, place: str) -> None:
    animal = s.rng.choice(("bird", "puppy", "kitten", "duck", "bunny", "squirrel", "mouse", "frog"))
    hurt = s.rng.choice(("a hurt wing", "a hurt leg", "a thorn in its paw", "a cut on its foot"))
    place = s.rng.choice(OUTDOOR_PLACES)
    _weather(s)
    s.para()
    s.say(
        "One day, {name} was walking in {place} when {he} heard a small sound.",
        "One morning, {name} and {friend} went to {place}. They saw something move in the grass.",
        "While playing at {place}, {name} found a little {animal} under a bush.",
        place=place, animal=animal,
    )
    s.say(
        "It was a little {animal} with {hurt}. It could not move.",
        "A tiny {animal} was sitting alone. It had {hurt}.",
        "The little {animal} looked scared. It had {hurt}.",
        animal=animal, hurt=hurt,
    )
    s.say(
        "\"Poor little {animal},\" said {name}. \"I will help you.\"",
        "\"We have to help it!\" {name} said.",
        "{name} picked it up very gently.",
        animal=animal,
    )
    s.para()
    s.say(
        "{name} took the {animal} home. {Helper} helped {him} make a soft bed in a box.",
        "{name} gave the {animal} water and some food. {He} kept it warm.",
        "{Helper} showed {name} how to take care of the {animal}.",
        animal=animal,
    )
    s.say(
        "Every day, {name} checked on the {animal}. Slowly, it got better.",
        "After a few days, the {animal} was strong again.",
        "The {animal} got better and better.",
        animal=animal,
    )
    s.say(
        "One sunny day, it was time to say goodbye. The {animal} ran off, but it looked back one last time.",
        "At last, the {animal} was well. {name} let it go, and it was free.",
        "The {animal} did not want to leave. It became {name}'s best friend.",
        animal=animal,
    )
    _closing(s, (
        "{name} felt proud that {he} had helped.",
        "{name} learned that being kind to animals is very important.",
        "Helping others made {name} feel happy inside.",
    ))


def _plot_mess(s: _Story, place: str) -> None:
    stuff, activity, result = s.rng.choice(MESSES)
    s.para()
    s.say(
        "One day, {name} {activity}.",
        "One rainy afternoon, {name} and {friend} {activity}.",
        "{name} was bored, so {he} {activity}.",
        activity=activity,
    )
    s.say(
        "It was so much fun! But soon there was {result}.",
        "{He} had lots of fun, but when {he} looked around, there was {result}.",
        "Oh no! There was {result}.",
        result=result,
    )
    s.say(
        "Then {helper} came in. \"What happened here?\" {ghe} asked.",
        "{Helper} walked in and saw the mess. {Ghe} did not look happy.",
        "Just then, {name} heard {helper} coming.",
    )
    s.para()
    s.say(
        "{name} looked down. \"I am sorry. I made a mess,\" {he} said.",
        "{name} wanted to hide, but {he} said, \"It was me. I am sorry.\"",
        "\"I will clean it up,\" said {name}.",
    )
    s.say(
        "{Helper} smiled. \"Thank you for telling the truth. Let's clean it up together.\"",
        "\"It is okay to have fun,\" said {helper}, \"but we must clean up after.\"",
        "{Helper} gave {name} a cloth and a bucket.",
    )
    s.say(
        "They cleaned and cleaned. Soon everything was clean and shiny.",
        "{name} picked up all the {stuff}. It took a long time, but {he} did it.",
        "Cleaning was not so bad. They even sang a song while they worked.",
        stuff=stuff,
    )
    _closing(s, (
        "{name} learned to always clean up after playing.",
        "From then on, {name} cleaned up every time {he} played.",
        "{name} learned that telling the truth is always best.",
    ))


def _plot_new_friend(s: _Story, place: str) -> None:
    new_place = s.rng.choice(("a new school", "a new town", "a new park", "a new class", "a big farm"))
    s.para()
    s.say(
        "{name} moved to {new_place}. {He} did not know anyone.",
        "It was {name}'s first day at {new_place}. {He} felt shy and small.",
        "{name} went to {new_place}. All the other children were playing, but {name} was alone.",
        new_place=new_place,
    )
    s.say(
        "{He} sat alone and looked at the ground.",
        "\"Nobody wants to play with me,\" {he} thought.",
        "{name} wanted to say hello, but {he} was too shy.",
    )
    s.para()
    s.say(
        "Then {friend} came over. \"Hi! Do you want to play with me?\" {fhe} asked.",
        "Then {friend} walked up with a big smile. \"Hello! What is your name?\"",
        "Then {friend} sat down next to {him}. \"I like your {obj},\" {fhe} said.",
        obj=_make_object(s.rng),
    )
    s.say(
        "\"I'm {name},\" said {name} quietly. \"Yes, I want to play!\"",
        "{name} smiled. \"Okay!\" {he} said.",
        "{name} was surprised, but {he} nodded.",
    )
    s.say(
        "They played tag and hide and seek. They laughed and ran until they were tired.",
        "They built a big sand castle together.",
        "They drew pictures and told funny jokes.",
        "They played on the swings and the slide.",
    )
    _closing(s, (
        "{name} learned that a friendly hello can change a whole day.",
        "Now {name} was not shy anymore.",
        "{name} was glad {he} said yes.",
    ))


def _plot_rain(s: _Story, place: str) -> None:
    plan = s.rng.choice(("have a picnic", "go to the beach", "play at the park", "fly a kite", "go to the zoo"))
    s.para()
    s.say(
        "One Saturday, {name} and {helper} wanted to {plan}.",
        "{name} was very {happy}. Today {he} was going to {plan}!",
        "{name} and {friend} made a plan to {plan}.",
        plan=plan, happy=s.rng.choice(HAPPY),
    )
    s.say(
        "But then, dark clouds came. Soon it started to rain.",
        "But when {he} looked out the window, it was raining hard.",
        "Just as they were ready to go, the rain began to fall. Drip, drop, drip.",
    )
    s.say(
        "\"Now we can't {plan},\" said {name}. {He} was very {sad}.",
        "{name} put {his} face on the window and frowned.",
        "{name} felt {sad}. The day was ruined.",
        plan=plan, sad=s.rng.choice(SAD),
    )
    s.para()
    s.say(
        "{Helper} had an idea. \"Let's {indoor}!\"",
        "\"We can still have fun,\" said {helper}. \"Let's {indoor}.\"",
        "{friend} said, \"I know! We can {indoor}!\"",
        indoor=s.rng.choice((
            "build a fort with blankets", "have a picnic on the floor",
            "put on our boots and jump in puddles", "bake cookies",
            "play a board game", "make a puppet show",
        )),
    )
    s.say(
        "They had so much fun that {name} forgot about the rain.",
        "It was even better than the first plan!",
        "{name} laughed and laughed.",
    )
    s.maybe(
        0.7,
        "Later, the sun came out, and there was a big rainbow in the sky.",
        "When the rain stopped, a rainbow came out. It had every color.",
    )
    _closing(s, (
        "{name} learned that you can have fun on any day.",
        "{name} learned that plans can change and it is okay.",
        "Now {name} liked rainy days too.",
    ))


def _plot_race(s: _Story, place: str) -> None:
    goal = s.rng.choice(("the big tree", "the old fence", "the red barn", "the pond", "the gate"))
    place = s.rng.choice(OUTDOOR_PLACES)
    s.para()
    s.say(
        "One day, {name} and {friend} were at {place}. \"Let's have a race!\" said {friend}.",
        "{name} loved to run fast. One day, {he} said to {friend}, \"I can beat you to {goal}!\"",
        "At {place}, the friends wanted to have a race to {goal}.",
        place=place, goal=goal,
    )
    s.say(
        "\"Ready, set, go!\" They ran as fast as they could.",
        "They counted to three and ran off.",
        "Off they went, running and laughing.",
    )
    s.say(
        "{name} was in front. But then {friend} tripped on a rock and fell down.",
        "Then {friend} fell and hurt {fhis} knee.",
        "Halfway there, {friend} slipped in the mud.",
    )
    s.para()
    s.say(
        "{name} wanted to win. But {he} stopped and ran back.",
        "{name} could win the race, but {he} did not keep going.",
        "{name} looked at {goal}, and then at {friend}. {He} turned around.",
        goal=goal,
    )
    s.say(
        "\"Are you okay?\" {he} asked, and {he} helped {friend} get up.",
        "{He} gave {friend} {his} hand. \"Let's walk together,\" {he} said.",
        "\"I will help you,\" said {name}.",
    )
    s.say(
        "They walked to {goal} side by side and finished together.",
        "They reached {goal} at the same time and laughed.",
        "Nobody won the race, but both of them were smiling.",
        goal=goal,
    )
    _closing(s, (
        "{name} learned that being a good friend is better than winning.",
        "Helping a friend felt better than any prize.",
        "{friend} said, \"You are the best friend ever.\"",
    ))


def _plot_gift(s: _Story, place: str) -> None:
    who = s.rng.choice(("Mom", "Dad", "Grandma", "Grandpa", "{friend}"))
    occasion = s.rng.choice(("birthday", "special day"))
    gift = s.rng.choice((
        "a card with a big heart", "a picture of the family", "a necklace made of beads",
        "a little clay cup", "a crown made of paper", "a bunch of flowers",
        "a box of cookies", "a painted stone",
    ))
    s.para()
    s.say(
        "Tomorrow was {who}'s {occasion}. {name} wanted to give a present.",
        "{name} knew that {who} had a {occasion} soon. {He} wanted to make something special.",
        who=who, occasion=occasion,
    )
    s.say(
        "But {name} did not have any money.",
        "{He} thought and thought. What could {he} make?",
        "{He} did not know what to give.",
    )
    s.say(
        "Then {he} had an idea. {He} would make {gift}!",
        "So {he} decided to make {gift}.",
        gift=gift,
    )
    s.para()
    s.say(
        "{He} worked very hard. {He} used glue, paper and lots of colors.",
        "It was not easy. Once {he} had to start again. But {he} did not give up.",
        "{He} worked in {his} room all afternoon and hid it under {his} bed.",
    )
    s.say(
        "The next day, {name} gave the present to {who}. \"Surprise!\" {he} said.",
        "In the morning, {name} ran to {who} with the present. \"Happy {occasion}!\"",
        who=who, occasion=occasion,
    )
    s.say(
        "{who_cap} was so happy. \"This is the best present ever!\" {who} said, with a big hug.",
        "{who_cap} smiled and had tears of joy. \"You made this for me?\"",
        who=who, who_cap=_cap(who),
    )
    _closing(s, (
        "{name} learned that a gift made with love is the best gift of all.",
        "{name} felt warm inside. Giving was even better than getting.",
    ))


def _plot_cookie(s: _Story, place: str) -> None:
    food = s.rng.choice(FOODS)
    s.para()
    s.say(
        "{Helper} made some {food} and put them on a high shelf. \"These are for after dinner,\" {ghe} said.",
        "There was a jar of {food} in the kitchen. {name} was not allowed to eat them yet.",
        "{name} saw some {food} on the table. They smelled so good.",
        food=food,
    )
    s.say(
        "But {name} was hungry, and {he} wanted some {food} now.",
        "{name} looked at the {food} again and again.",
        food=food,
    )
    s.say(
        "When nobody was looking, {he} took one and ate it. Then {he} took another one.",
        "{He} climbed on a chair to reach them. The chair wobbled, and crash! The plate fell down.",
        "{He} took a big bite. Yum! But then {he} felt bad.",
    )
    s.para()
    s.say(
        "{Helper} came in. \"Did you eat the {food}?\" {ghe} asked.",
        "{Helper} heard the noise and came running. \"What happened?\"",
        food=food,
    )
    s.say(
        "{name} wanted to say no, but {he} told the truth. \"Yes. I am sorry.\"",
        "{name} looked down. \"It was me. I could not wait,\" {he} said.",
    )
    s.say(
        "{Helper} hugged {him}. \"Thank you for being honest. Next time, please ask first.\"",
        "\"I am glad you told me the truth,\" said {helper}. \"Now let's share the rest after dinner.\"",
    )
    _closing(s, (
        "{name} learned that it is better to wait and to ask.",
        "{name} learned that telling the truth is always the right thing to do.",
        "After dinner, they all ate the {food} together.",
    ), food=food)


def _plot_magic(s: _Story, place: str) -> None:
    find = s.rng.choice(MAGIC_FINDS)
    wish, thing = s.rng.choice(WISHES)
    place = s.rng.choice(OUTDOOR_PLACES)
    _weather(s)
    s.para()
    s.say(
        "One day, while playing in {place}, {name} found {find}.",
        "One evening, {name} saw something glow in {place}. It was {find}!",
        "Deep in {place}, {name} found {find}.",
        place=place, find=find,
    )
    s.say(
        "Suddenly, it began to speak. \"I can grant you one wish,\" it said.",
        "A soft voice said, \"Make a wish, and it will come true.\"",
        "It sparkled and said, \"You are kind. You may have one wish.\"",
    )
    s.say(
        "{name} thought about toys and candy and a big castle.",
        "At first, {name} wanted lots of candy for {himself}.",
        "{name} thought very hard about what to wish for.",
        himself="herself" if s.hero.he == "she" else "himself",
    )
    s.para()
    s.say(
        "But then {he} said, \"I wish for {wish}.\"",
        "Then {he} smiled and said, \"I wish for {wish}.\"",
        wish=wish,
    )
    s.say(
        "There was a flash of light, and there was {thing}!",
        "Poof! Just like that, there was {thing}.",
        "The wish came true, and there was {thing}.",
        thing=thing,
    )
    s.say(
        "Everyone was so happy. They thanked {name} again and again.",
        "{name} felt happier than if {he} had wished for toys.",
    )
    _closing(s, (
        "{name} learned that the best wishes are the ones that make others happy.",
        "{name} kept the secret, and {he} smiled every time {he} walked by that spot.",
    ))


def _plot_lost_way(s: _Story, place: str) -> None:
    where = s.rng.choice(("the forest", "the big store", "the fair", "the woods", "the market", "the zoo"))
    s.para()
    s.say(
        "One day, {name} went to {where} with {helper}.",
        "{name} and {helper} went for a walk in {where}.",
        where=where,
    )
    s.say(
        "{name} saw a pretty butterfly and followed it.",
        "{name} saw something shiny and ran to look at it.",
        "{name} stopped to look at the {obj}.",
        obj=_make_object(s.rng),
    )
    s.say(
        "When {he} looked up, {helper} was gone. {name} was lost!",
        "When {he} turned around, {he} could not see {helper} anymore.",
    )
    s.say(
        "{name} was scared. {His} heart went thump, thump, thump.",
        "\"Where are you?\" {he} called. Nobody answered.",
    )
    s.para()
    s.say(
        "Then {name} remembered what {helper} always said: \"If you get lost, stay where you are.\"",
        "{name} took a deep breath. {He} remembered to ask a helper for help.",
    )
    s.say(
        "{He} sat down on a bench and waited. Soon {he} heard {his} name.",
        "{He} found a kind lady in a blue shirt. She helped {him} call for {helper}.",
        "{He} stayed still and called out. Soon {helper} came running.",
    )
    s.say(
        "{Helper} gave {name} a big hug. \"I am so glad you are safe!\"",
        "\"There you are!\" said {helper}, and {ghe} held {him} tight.",
    )
    _closing(s, (
        "{name} learned to always stay close and to stay calm.",
        "From then on, {name} always held {helper}'s hand.",
    ))


_PLOTS: tuple[Callable[[_Story, str], None], ...] = (
    _plot_lost, _plot_stuck, _plot_share, _plot_fear, _plot_broken, _plot_skill,
    _plot_hurt_animal, _plot_mess, _plot_new_friend, _plot_rain, _plot_race,
    _plot_gift, _plot_cookie, _plot_magic, _plot_lost_way,
)


def generate_story(rng: random.Random) -> str:
    """Generate one story, drawing all choices from ``rng``."""
    hero = _make_hero(rng)
    friend = _make_friend(rng, hero)
    helper = _make_helper(rng, hero)
    place = rng.choice(PLACES)
    story = _Story(rng, hero, friend, helper)
    _opening(story, place)
    rng.choice(_PLOTS)(story, place)
    return story.text()


def generate_stories(n: int, seed: int) -> list[str]:
    """Return ``n`` stories generated with ``random.Random(seed)``."""
    if n < 0:
        raise ValueError("n must be non-negative")
    rng = random.Random(seed)
    stories = [generate_story(rng) for _ in range(n)]
    logger.debug("generated %d stories with seed %d", n, seed)
    return stories
