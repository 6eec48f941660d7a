"""Synthetic customer-agent chat transcripts and a question repository (paper 002, SeaCat).

Why: SeaCat finds the customer's main question by its position relative to the agent's first
sentence (002 §2.2) and classifies the product/service from it. So the generator places the
one label-bearing sentence within +-2 sentences of the agent's first sentence (mostly right
before or after), keeps the other sentences generic, and lets diagnosis turns name other
products as distractors, so a model reading the whole chat is misled and one reading the
main question is not. Every sentence ends in . ? or ! so the shared splitter recovers it.
"""

from __future__ import annotations

import random
from datetime import date

from feedback_nlp.demo_data.vocab import pick, spread_timestamps, weighted

ITEMS = [
    "headset",
    "coffee maker",
    "rice cooker",
    "backpack",
    "phone case",
    "blender",
    "desk lamp",
    "winter coat",
    "office chair",
    "toaster",
]
DEVICES = ["Kindle", "Echo Dot", "Fire TV Stick", "Fire tablet", "Kindle Paperwhite", "Echo Show"]
DAYS = ["three", "four", "five", "six", "ten", "twelve"]
AMOUNTS = ["$15", "$25", "$40", "$50", "$100"]
AGENTS = ["Sam", "Priya", "Daniel", "Maria", "Kevin", "Aisha", "Lucas", "Emma"]

# label -> (base handle time in minutes, main-question templates).
LABELS: dict[str, tuple[float, list[str]]] = {
    "order delivery": (
        8.0,
        [
            "Where is my package with the {item}?",
            "My order for the {item} still hasn't arrived, can you tell me where it is?",
            "The tracking says my {item} was delivered but I never got it.",
            "When will my {item} be delivered?",
            "Why is the delivery of my {item} delayed by {days} days?",
            "Can you change the delivery address for my {item}?",
            "The tracking for my {item} hasn't updated in {days} days, is it lost?",
            "My package was supposed to arrive yesterday but it is still not here.",
            "Can I get my {item} delivered to a pickup point instead?",
            "The courier left my {item} at the wrong address, what can I do?",
        ],
    ),
    "returns and refunds": (
        10.0,
        [
            "How do I return the {item} I bought last week?",
            "I returned the {item} {days} days ago and still have not received my refund.",
            "Can I get a refund for the {item}?",
            "Where is the refund for my returned {item}?",
            "I need a return label for the {item}, can you send me one?",
            "Is it too late to return the {item} I ordered last month?",
            "The refund I got for the {item} was {amount} less than I paid, why?",
            "Can I exchange the {item} for a different size instead of returning it?",
            "How long does it take for a refund to show up on my card?",
        ],
    ),
    "account access": (
        12.0,
        [
            "I can't log in to my account.",
            "I forgot my password and the reset email never arrives.",
            "My account has been locked after too many attempts, can you unlock it?",
            "I'm not receiving the verification code on my phone.",
            "How do I change the email address on my account?",
            "Someone else seems to have logged in to my account, what should I do?",
            "The two-step verification keeps failing when I try to sign in.",
            "I have two accounts and want to merge them, is that possible?",
            "Why does the website say my account is disabled?",
        ],
    ),
    "payment": (
        9.0,
        [
            "Why was my card charged twice for the {item}?",
            "My payment for the {item} was declined, what should I do?",
            "Can I change the payment method on my order for the {item}?",
            "I see a charge of {amount} on my card that I don't recognize.",
            "Why was I charged {amount} before my {item} even shipped?",
            "Can I pay for the {item} in monthly installments?",
            "My bank says the payment went through but the order shows payment failed.",
            "How do I remove an old credit card from my wallet?",
        ],
    ),
    "prime membership": (
        7.0,
        [
            "How do I cancel my Prime membership?",
            "I was charged for Prime but I never signed up.",
            "Can I get a refund for my Prime membership fee?",
            "Why didn't I get free two-day shipping with my Prime membership?",
            "How do I share my Prime benefits with my family?",
            "My Prime free trial turned into a paid membership without warning, can you reverse it?",
            "Can I switch my Prime membership from monthly to yearly?",
            "Does my Prime membership include Prime Video?",
        ],
    ),
    "digital devices": (
        15.0,
        [
            "My {device} won't turn on anymore.",
            "My {device} keeps disconnecting from the wifi.",
            "How do I reset my {device} to factory settings?",
            "The screen of my {device} is frozen, what should I do?",
            "My {device} is not charging even with a new cable.",
            "I can't register my {device} to my account.",
            "The books I bought are not showing up on my {device}.",
            "My {device} doesn't respond to voice commands anymore.",
            "The battery of my {device} drains in a few hours.",
        ],
    ),
    "gift cards": (
        6.0,
        [
            "I tried to redeem a gift card but it says the code is invalid.",
            "How can I check my gift card balance?",
            "I bought a {amount} gift card for my friend and she never received the email.",
            "Can I use a gift card to pay for part of my order?",
            "My gift card balance disappeared from my account.",
            "Can I send a gift card to someone in another country?",
            "The gift card I received says it has already been redeemed.",
            "How do I change the delivery date of an e-gift card I bought?",
            "Can I get a refund for an unused gift card?",
        ],
    ),
    "damaged item": (
        11.0,
        [
            "The {item} arrived broken.",
            "My {item} arrived with a big crack in it.",
            "The box was crushed and the {item} inside is damaged.",
            "The {item} I received has scratches all over it.",
            "Part of the {item} was snapped off when I opened the box.",
            "The {item} arrived damaged, can you send a replacement?",
            "My {item} was leaking when it arrived.",
            "The {item} arrived with a dent on the side, what can I do?",
            "The {item} I ordered came in pieces.",
        ],
    ),
}

# Sentences that name a product/service of `label` without asking about it (distractors).
DISTRACTORS: dict[str, list[str]] = {
    "order delivery": ["The package itself arrived on time.", "My other delivery this week came without problems."],
    "returns and refunds": ["My last refund went through without problems.", "I returned something last year too."],
    "account access": ["I'm logged in on the app right now.", "I changed my password last month."],
    "payment": ["My card was charged normally.", "I usually pay with my debit card."],
    "prime membership": ["I have had Prime for years.", "I watch a lot of Prime Video."],
    "digital devices": ["I also have a Kindle and it works fine.", "I asked my Echo Dot to reorder it."],
    "gift cards": ["I paid part of it with a gift card.", "I still have some gift card balance left."],
    "damaged item": ["My last order arrived broken but that was sorted quickly.", "The box looked fine this time."],
}

GREETINGS = ["Hi there.", "Hello.", "Hi!", "Good morning.", "Hey.", "Hello there!", "Good evening."]
CONTEXT = [
    "I hope you can help me.",
    "I have been a customer for years.",
    "This is my first time contacting support.",
    "I've been trying to sort this out all morning.",
    "I tried the help pages but couldn't find an answer.",
    "Sorry if this is the wrong place to ask.",
]
TRAILING = [
    "I've been waiting for a while now.",
    "It's quite urgent.",
    "I'd appreciate a quick answer.",
    "Thanks in advance.",
]
AGENT_FIRST = [
    "Hello, my name is {agent} and I'll be happy to help you today.",
    "Hi, thanks for contacting customer service, this is {agent}.",
    "Welcome, my name is {agent}.",
    "Good day, I'm {agent} and I'm here to help.",
]
HOW_CAN_I_HELP = ["How can I help you today?", "What can I do for you?", "How may I assist you?"]
ACK = [
    "I'm sorry to hear about that.",
    "I understand how frustrating that must be.",
    "Let me look into this for you.",
    "Thanks for explaining.",
]
# (agent question, customer answer templates): diagnosis rounds that fit any label.
DIAGNOSIS = [
    (
        "Could you please confirm the email address on your account?",
        ["Sure, it's the one ending in {digits}.", "It's the one I always use."],
    ),
    ("Can you give me the order number, please?", ["The order number is 114-{order}.", "Sure, it's 114-{order}."]),
    ("Could you tell me when this started?", ["It started {days} days ago.", "Only since yesterday."]),
    (
        "Have you already tried anything to fix it?",
        ["Yes, I already tried restarting and logging out.", "I haven't tried anything yet."],
    ),
    ("Could you confirm your full name for security?", ["My name is Alex {surname}.", "Sure, Alex {surname}."]),
    ("Let me check that for you, one moment please.", ["Sure, take your time.", "Okay, thank you."]),
    ("Thank you for waiting, I can see the details on my side now.", ["Great, thanks.", "Okay, good."]),
]
SURNAMES = ["Miller", "Garcia", "Chen", "Novak", "Okafor", "Smith"]
RESOLVE = [
    "I have taken care of that for you.",
    "Everything should be sorted out within 24 hours.",
    "You will receive a confirmation email shortly.",
    "I've added a note to your account as well.",
]
CLOSING = [
    (
        "Is there anything else I can help you with?",
        "No, that's all. Thank you!",
        "Thank you for contacting us and have a great day!",
    ),
    (
        "Is there anything else I can do for you today?",
        "That's everything, thanks for your help.",
        "You're welcome, take care!",
    ),
]
PLACEMENT = {"before1": 0.45, "before2": 0.1, "after1": 0.35, "after2": 0.1}


def main_question(rng: random.Random, label: str) -> str:
    """A paraphrase of a question that identifies `label`, with slots filled."""
    return pick(rng, LABELS[label][1]).format(
        item=pick(rng, ITEMS), device=pick(rng, DEVICES), days=pick(rng, DAYS), amount=pick(rng, AMOUNTS)
    )


def _answer(rng: random.Random, templates: list[str]) -> str:
    return pick(rng, templates).format(
        digits=rng.randrange(10, 100),
        order=f"{rng.randrange(10**7):07d}",
        days=pick(rng, DAYS),
        surname=pick(rng, SURNAMES),
    )


def build_turns(rng: random.Random, label: str, question: str) -> tuple[list[dict], int]:
    """The turns of one chat and the number of diagnosis rounds (which drives handle time).

    Customer speaks 1-3 sentences before the agent's first sentence; the main question sits
    at offset -1, -2, +1 or +2 from it, per PLACEMENT.
    """
    where = weighted(rng, PLACEMENT)
    agent_first = pick(rng, AGENT_FIRST).format(agent=pick(rng, AGENTS))
    greet = pick(rng, GREETINGS)
    ack = [pick(rng, ACK)] if rng.random() < 0.7 else []
    if where == "before1":
        turns = [
            ("customer", [greet] + rng.sample(CONTEXT, rng.randint(0, 1)) + [question]),
            ("agent", [agent_first] + ack),
        ]
    elif where == "before2":
        turns = [("customer", [greet, question, pick(rng, TRAILING)]), ("agent", [agent_first] + ack)]
    else:
        n_ctx = rng.randint(0, 2) if where == "after1" else rng.randint(0, 1)
        first = [agent_first] + ([pick(rng, HOW_CAN_I_HELP)] if where == "after2" else [])
        turns = [
            ("customer", [greet] + rng.sample(CONTEXT, n_ctx)),
            ("agent", first),
            ("customer", [question] + ([pick(rng, TRAILING)] if rng.random() < 0.3 else [])),
            ("agent", ack or [pick(rng, ACK)]),
        ]
    rounds = rng.randint(2, 4)
    others = [x for lab in sorted(DISTRACTORS) if lab != label for x in DISTRACTORS[lab]]
    for ask, answers in rng.sample(DIAGNOSIS, rounds):
        turns.append(("agent", [ask]))
        turns.append(("customer", [_answer(rng, answers)] + ([pick(rng, others)] if rng.random() < 0.35 else [])))
    ask, bye, thanks = pick(rng, CLOSING)
    turns.append(("agent", rng.sample(RESOLVE, rng.randint(1, 2)) + [ask]))
    turns.append(("customer", [bye]))
    turns.append(("agent", [thanks]))
    merged: list[tuple[str, list[str]]] = []
    for speaker, sents in turns:  # e.g. agent greeting without ack, then the agent's first question
        if merged and merged[-1][0] == speaker:
            merged[-1][1].extend(sents)
        else:
            merged.append((speaker, list(sents)))
    return [{"speaker": s, "text": " ".join(sents)} for s, sents in merged], rounds


def generate_transcripts(
    rng: random.Random, n: int, start: date = date(2026, 1, 1), months: int = 7, id_prefix: str = "tx"
) -> list[dict]:
    """`n` English transcripts, labels drawn uniformly, handle time = label base + rounds + noise."""
    stamps = spread_timestamps(rng, n, start, months)
    labels = sorted(LABELS)
    out: list[dict] = []
    for i in range(n):
        label = pick(rng, labels)
        question = main_question(rng, label)
        turns, rounds = build_turns(rng, label, question)
        handle = max(1.0, round(LABELS[label][0] + 0.9 * rounds + rng.gauss(0.0, 1.5), 1))
        out.append(
            {
                "id": f"{id_prefix}-{i + 1:06d}",
                "turns": turns,
                "label": label,
                "handle_time": handle,
                "created_at": stamps[i],
                "language": "en",
                "main_question": question,
            }
        )
    return out


def questions_from_transcripts(transcripts: list[dict]) -> list[dict]:
    """The question repository (002 §3.1): each main question with its product and handle time."""
    return [
        {"id": f"q-{t['id']}", "question": t["main_question"], "product": t["label"], "handle_time": t["handle_time"]}
        for t in transcripts
    ]
