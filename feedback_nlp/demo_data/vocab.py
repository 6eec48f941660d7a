"""Shared helpers and the feedback issue taxonomy for the synthetic demo data.

Why: the three generators must agree on how time is spread (001 §4.1 tests on the last
month, so every month needs records) and on one L-Coarse/L-Granular taxonomy that both the
feedback generator and the tests read, so the taxonomy lives in one place.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from typing import Sequence, TypeVar

T = TypeVar("T")


def add_months(start: date, k: int) -> date:
    """First day of the month `k` months after `start`'s month."""
    y, m = divmod(start.month - 1 + k, 12)
    return date(start.year + y, m + 1, 1)


def spread_timestamps(rng: random.Random, n: int, start: date, months: int) -> list[str]:
    """`n` sorted ISO-8601 UTC timestamps, stratified so each of `months` months gets ~n/months.

    Stratifying (rather than drawing months independently) guarantees month coverage even for
    the tiny counts the tests use; sorting makes ids chronological, as in a real export.
    """
    out: list[datetime] = []
    for i in range(n):
        k = i * months // n if n else 0
        first, nxt = add_months(start, k), add_months(start, k + 1)
        day = rng.randrange((nxt - first).days)
        secs = rng.randrange(24 * 3600)
        out.append(datetime(first.year, first.month, first.day, tzinfo=UTC) + timedelta(days=day, seconds=secs))
    return [dt.isoformat() for dt in sorted(out)]


def weighted(rng: random.Random, options: dict[T, float]) -> T:
    """One key of `options` drawn with the given weights (dict order is fixed, so reproducible)."""
    keys = list(options)
    return rng.choices(keys, weights=[options[k] for k in keys])[0]


def pick(rng: random.Random, seq: Sequence[T]) -> T:
    return seq[rng.randrange(len(seq))]


# L-Coarse issue -> {L-Granular label: clause paraphrases that mention it in a sentence}.
# Clauses are lower-case so they fit after "Unfortunately, " or "I noticed that ".
TAXONOMY: dict[str, dict[str, list[str]]] = {
    "missing parts issue": {
        "no power cable included": ["there was no power cable in the box", "the power cable was not included"],
        "screws are missing": ["some of the screws were missing", "the screws needed for assembly are missing"],
        "remote control missing": ["the remote control was missing", "there was no remote control in the package"],
        "only part of the set delivered": ["only part of the set was delivered", "half of the set never arrived"],
        "lid is missing": ["the lid was missing", "it came without the lid"],
    },
    "not as pictured": {
        "looks different from picture": ["it looks different from the picture", "it looks nothing like the photo"],
        "color differs from photo": ["the color differs from the photo", "the colour is not the one shown online"],
        "pattern not as advertised": ["the pattern is not as advertised", "the print is different from the listing"],
        "material not as described": ["the material is not as described", "the fabric is not what the listing said"],
    },
    "size issue": {
        "runs too small": ["it runs too small", "it is at least one size too small"],
        "runs too large": ["it runs too large", "it is way too big even in my usual size"],
        "sleeves too short": ["the sleeves are too short", "the arms are much too short"],
        "wrong dimensions listed": ["the dimensions listed are wrong", "the measurements on the page are wrong"],
    },
    "damaged item": {
        "screen cracked on arrival": ["the screen was cracked on arrival", "the display had a crack when I opened it"],
        "arrived broken": ["it arrived broken", "it was broken when it arrived"],
        "dented corner": ["one corner was dented", "there is a dent in the corner"],
        "scratches on surface": ["the surface is covered in scratches", "there are deep scratches on the top"],
        "glass shattered in transit": ["the glass shattered in transit", "the glass part was smashed during shipping"],
    },
    "quality issue": {
        "stitching came apart": ["the stitching came apart", "the seams started to come apart"],
        "feels cheap": ["it feels cheap", "the whole thing feels cheap and flimsy"],
        "stopped working after a week": ["it stopped working after a week", "it died after only a week of use"],
        "paint peeling off": ["the paint is peeling off", "the paint started to peel after a few days"],
        "zipper broke": ["the zipper broke", "the zip broke the first time I used it"],
    },
    "instruction issue": {
        "instructions unclear": ["the instructions are unclear", "the instructions make no sense at all"],
        "manual in wrong language": ["the manual is in the wrong language", "the manual was only in Chinese"],
        "no instructions included": ["no instructions were included", "there were no instructions in the box"],
        "diagram does not match parts": ["the diagram does not match the parts", "the drawings show different parts"],
    },
    "used condition": {
        "box has been opened": ["the box had already been opened", "somebody had clearly opened the box before"],
        "signs of previous use": ["it shows signs of previous use", "it had obviously been used before"],
        "hair on the item": ["there was hair on the item", "I found hairs stuck to it"],
        "item was dirty": ["the item was dirty", "it came dirty with marks all over"],
    },
    "wrong item": {
        "received different model": ["I received a different model", "they sent an older model than I ordered"],
        "wrong color sent": ["the wrong color was sent", "they sent it in a different colour"],
        "wrong size sent": ["the wrong size was sent", "I got a different size than I ordered"],
        "completely different product": ["I got a completely different product", "the box contained something else"],
    },
    "late delivery": {
        "arrived a week late": ["it arrived a week late", "the parcel came a whole week late"],
        "missed the delivery date": ["the delivery date was missed", "it did not come on the promised date"],
        "tracking not updated": ["the tracking was never updated", "the tracking page did not update for days"],
        "delivered after the event": ["it was delivered after the event", "it came after the party was over"],
    },
    "battery issue": {
        "battery drains fast": ["the battery drains fast", "the battery is empty after a couple of hours"],
        "battery does not charge": ["the battery does not charge", "the battery will not charge at all"],
        "battery dead on arrival": [
            "the battery was dead on arrival",
            "the battery was completely dead out of the box",
        ],
        "battery life shorter than advertised": [
            "the battery life is shorter than advertised",
            "the battery lasts half as long as advertised",
        ],
    },
    "packaging issue": {
        "box was soaked": ["the box was soaked", "the package arrived soaking wet"],
        "no protective packaging": ["there was no protective packaging", "it was shipped without any padding"],
        "package torn open": ["the package was torn open", "the parcel arrived ripped open"],
        "excessive packaging": ["the packaging was excessive", "there was far too much plastic packaging"],
    },
    "smell issue": {
        "strong chemical smell": ["it has a strong chemical smell", "it smells strongly of chemicals"],
        "smells like smoke": ["it smells like smoke", "it smells of cigarette smoke"],
        "musty odor": ["it has a musty odor", "it smells musty like an old basement"],
    },
    "noise issue": {
        "makes loud noise": ["it makes a loud noise", "it is extremely loud when running"],
        "rattles when shaken": ["it rattles when shaken", "something loose rattles inside"],
        "motor whines": ["the motor whines", "the motor makes a high-pitched whine"],
    },
    "connectivity issue": {
        "bluetooth does not pair": ["the bluetooth does not pair", "it will not pair over bluetooth"],
        "wifi keeps disconnecting": ["the wifi keeps disconnecting", "it drops the wifi connection constantly"],
        "app does not find device": ["the app does not find the device", "the app never detects it"],
    },
}

COARSE_OF: dict[str, str] = {g: c for c, gs in TAXONOMY.items() for g in gs}

# Product category (the auxiliary classification `label`) -> products, plausible coarse issues, and
# granular issues that make no sense for the category (a dress does not "stop working").
CATEGORIES: dict[str, tuple[list[str], list[str], set[str]]] = {
    "electronics": (
        ["headphones", "tablet", "bluetooth speaker", "smart watch", "e-reader"],
        [
            "missing parts issue",
            "not as pictured",
            "damaged item",
            "quality issue",
            "instruction issue",
            "used condition",
            "wrong item",
            "late delivery",
            "battery issue",
            "packaging issue",
            "noise issue",
            "connectivity issue",
        ],
        {"pattern not as advertised", "stitching came apart", "zipper broke", "wrong size sent"},
    ),
    "clothing": (
        ["jacket", "dress", "pair of jeans", "sweater", "pair of sneakers"],
        [
            "not as pictured",
            "size issue",
            "quality issue",
            "used condition",
            "wrong item",
            "late delivery",
            "packaging issue",
            "smell issue",
        ],
        {"stopped working after a week", "paint peeling off"},
    ),
    "home": (
        ["lamp", "blender", "bookshelf", "coffee maker", "set of glasses"],
        [
            "missing parts issue",
            "not as pictured",
            "size issue",
            "damaged item",
            "quality issue",
            "instruction issue",
            "used condition",
            "wrong item",
            "late delivery",
            "packaging issue",
            "smell issue",
            "noise issue",
        ],
        {
            "runs too small",
            "runs too large",
            "sleeves too short",
            "zipper broke",
            "stitching came apart",
            "remote control missing",
        },
    ),
    "toys": (
        ["remote control car", "doll house", "puzzle", "building set", "plush bear"],
        [
            "missing parts issue",
            "not as pictured",
            "damaged item",
            "quality issue",
            "instruction issue",
            "wrong item",
            "late delivery",
            "battery issue",
            "packaging issue",
            "smell issue",
        ],
        {"zipper broke", "wrong size sent"},
    ),
}

# Granular label -> (de, fr, es) clause; non-English feedback draws only from these issues.
GRANULAR_TRANSLATIONS: dict[str, tuple[str, str, str]] = {
    "no power cable included": (
        "das Netzkabel fehlte im Karton",
        "le câble d'alimentation manquait",
        "no venía el cable de alimentación",
    ),
    "screws are missing": ("einige Schrauben fehlten", "il manquait des vis", "faltaban algunos tornillos"),
    "looks different from picture": (
        "es sieht anders aus als auf dem Bild",
        "il ne ressemble pas à la photo",
        "se ve diferente a la foto",
    ),
    "color differs from photo": (
        "die Farbe weicht vom Foto ab",
        "la couleur est différente de la photo",
        "el color no es el de la foto",
    ),
    "runs too small": ("es fällt zu klein aus", "il taille trop petit", "la talla es demasiado pequeña"),
    "runs too large": ("es fällt viel zu groß aus", "il taille beaucoup trop grand", "la talla es demasiado grande"),
    "arrived broken": ("es kam kaputt an", "il est arrivé cassé", "llegó roto"),
    "scratches on surface": (
        "die Oberfläche ist voller Kratzer",
        "la surface est pleine de rayures",
        "la superficie está llena de arañazos",
    ),
    "stitching came apart": (
        "die Nähte sind aufgegangen",
        "les coutures se sont défaites",
        "las costuras se deshicieron",
    ),
    "stopped working after a week": (
        "es funktionierte nach einer Woche nicht mehr",
        "il a cessé de fonctionner après une semaine",
        "dejó de funcionar después de una semana",
    ),
    "instructions unclear": (
        "die Anleitung ist unverständlich",
        "les instructions ne sont pas claires",
        "las instrucciones no son claras",
    ),
    "box has been opened": (
        "der Karton war bereits geöffnet",
        "la boîte avait déjà été ouverte",
        "la caja ya estaba abierta",
    ),
    "signs of previous use": (
        "es hat deutliche Gebrauchsspuren",
        "il présente des traces d'utilisation",
        "tiene señales de uso",
    ),
    "wrong color sent": (
        "es wurde die falsche Farbe geliefert",
        "on m'a envoyé la mauvaise couleur",
        "me enviaron el color equivocado",
    ),
    "completely different product": (
        "ich habe ein ganz anderes Produkt bekommen",
        "j'ai reçu un produit complètement différent",
        "recibí un producto completamente distinto",
    ),
    "arrived a week late": (
        "es kam eine Woche zu spät an",
        "il est arrivé avec une semaine de retard",
        "llegó con una semana de retraso",
    ),
    "battery drains fast": (
        "der Akku ist sehr schnell leer",
        "la batterie se vide très vite",
        "la batería se agota muy rápido",
    ),
    "battery does not charge": ("der Akku lädt nicht", "la batterie ne se charge pas", "la batería no carga"),
    "package torn open": ("das Paket war aufgerissen", "le colis était déchiré", "el paquete llegó roto"),
    "strong chemical smell": (
        "es riecht stark nach Chemie",
        "il a une forte odeur chimique",
        "tiene un fuerte olor a químicos",
    ),
    "makes loud noise": ("es macht sehr laute Geräusche", "il fait beaucoup de bruit", "hace mucho ruido"),
    "bluetooth does not pair": (
        "die Bluetooth-Kopplung klappt nicht",
        "le bluetooth ne s'appaire pas",
        "el bluetooth no se empareja",
    ),
}
