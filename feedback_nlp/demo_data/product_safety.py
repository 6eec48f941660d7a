"""Synthetic multilingual product-safety claims (paper 001).

Why: the safety classifier is trained on a small escalated, labeled set (~40% positive) and
run on a large unescalated traffic pool with very few positives, tested on the last month,
and augmented with a parallel corpus. Sentence banks are parallel across languages (entry i
means the same in every language), so a translation is the same sentence indices rendered in
another language. Near-miss complaints share words with the positives ("smell", "skin",
"heel", "sole", "sharp") so the task is not keyword-separable.
"""

from __future__ import annotations

import random
from datetime import date

from feedback_nlp.demo_data.vocab import pick, spread_timestamps, weighted

LANGS = ("en", "de", "fr", "es", "nl", "pl")  # bank tuples list texts in this order; nl/pl are optional
ORIGINAL_LANGS = {"en": 0.55, "de": 0.18, "fr": 0.12, "es": 0.09, "nl": 0.04, "pl": 0.02}
SAFETY_CASES = {"allergic_reaction": 0.35, "chemical_smell": 0.3, "injury": 0.35}

BANKS: dict[str, list[tuple[str, ...]]] = {
    "opener": [
        (
            "I ordered these sneakers two weeks ago.",
            "Ich habe diese Sneaker vor zwei Wochen bestellt.",
            "J'ai commandé ces baskets il y a deux semaines.",
            "Pedí estas zapatillas hace dos semanas.",
            "Ik heb deze sneakers twee weken geleden besteld.",
            "Zamówiłam te sneakersy dwa tygodnie temu.",
        ),
        (
            "I bought this dress for a wedding.",
            "Ich habe dieses Kleid für eine Hochzeit gekauft.",
            "J'ai acheté cette robe pour un mariage.",
            "Compré este vestido para una boda.",
            "Ik heb deze jurk voor een bruiloft gekocht.",
            "Kupiłam tę sukienkę na wesele.",
        ),
        (
            "The jacket arrived last Monday.",
            "Die Jacke kam letzten Montag an.",
            "La veste est arrivée lundi dernier.",
            "La chaqueta llegó el lunes pasado.",
        ),
        (
            "I wore the new boots for the first time yesterday.",
            "Ich habe die neuen Stiefel gestern zum ersten Mal getragen.",
            "J'ai porté les nouvelles bottes pour la première fois hier.",
            "Ayer me puse las botas nuevas por primera vez.",
            "Ik heb de nieuwe laarzen gisteren voor het eerst gedragen.",
            "Wczoraj po raz pierwszy założyłam nowe kozaki.",
        ),
        (
            "I ordered this shirt for my son.",
            "Ich habe dieses Hemd für meinen Sohn bestellt.",
            "J'ai commandé cette chemise pour mon fils.",
            "Pedí esta camisa para mi hijo.",
        ),
        (
            "This is about my order of a wool sweater.",
            "Es geht um meine Bestellung eines Wollpullovers.",
            "Je vous écris au sujet de ma commande d'un pull en laine.",
            "Les escribo por mi pedido de un jersey de lana.",
        ),
        (
            "I received the sandals on Friday.",
            "Ich habe die Sandalen am Freitag erhalten.",
            "J'ai reçu les sandales vendredi.",
            "Recibí las sandalias el viernes.",
        ),
    ],
    "allergic_reaction": [
        (
            "After wearing it for an hour I got a red rash on my neck.",
            "Nachdem ich es eine Stunde getragen hatte, bekam ich einen roten Ausschlag am Hals.",
            "Après l'avoir porté une heure, j'ai eu une éruption rouge sur le cou.",
            "Después de llevarlo una hora me salió un sarpullido rojo en el cuello.",
            "Na een uur dragen kreeg ik een rode uitslag in mijn nek.",
            "Po godzinie noszenia dostałam wysypki na szyi.",
        ),
        (
            "My skin has been itching all over since I wore it.",
            "Seit ich es getragen habe, juckt meine Haut überall.",
            "Depuis que je l'ai porté, j'ai des démangeaisons partout.",
            "Desde que lo usé me pica la piel por todas partes.",
            "Sinds ik het gedragen heb, jeukt mijn huid overal.",
            "Odkąd to założyłam, swędzi mnie cała skóra.",
        ),
        (
            "I felt a burning sensation on my skin wherever the fabric touched it.",
            "Überall, wo der Stoff die Haut berührte, hatte ich ein brennendes Gefühl.",
            "J'ai ressenti une sensation de brûlure partout où le tissu touchait ma peau.",
            "Sentí ardor en la piel en todos los sitios donde la tela me tocaba.",
        ),
        (
            "My feet became red and swollen after wearing them.",
            "Meine Füße wurden nach dem Tragen rot und geschwollen.",
            "Mes pieds sont devenus rouges et enflés après les avoir portées.",
            "Se me pusieron los pies rojos e hinchados después de usarlas.",
        ),
        (
            "My daughter developed blisters and an allergic reaction on her arms.",
            "Meine Tochter bekam Bläschen und eine allergische Reaktion an den Armen.",
            "Ma fille a eu des cloques et une réaction allergique sur les bras.",
            "Mi hija tuvo ampollas y una reacción alérgica en los brazos.",
        ),
        (
            "The skin under the strap is swollen and sore.",
            "Die Haut unter dem Riemen ist geschwollen und wund.",
            "La peau sous la bride est enflée et douloureuse.",
            "La piel bajo la correa está hinchada y dolorida.",
        ),
    ],
    "chemical_smell": [
        (
            "It has a strong chemical smell that gave me a headache.",
            "Es hat einen starken chemischen Geruch, von dem ich Kopfschmerzen bekam.",
            "Il a une forte odeur chimique qui m'a donné mal à la tête.",
            "Tiene un fuerte olor químico que me dio dolor de cabeza.",
            "Het heeft een sterke chemische geur waar ik hoofdpijn van kreeg.",
            "Ma silny chemiczny zapach, od którego rozbolała mnie głowa.",
        ),
        (
            "It smells of petrol even after washing it twice.",
            "Es riecht selbst nach zweimaligem Waschen nach Benzin.",
            "Il sent l'essence même après deux lavages.",
            "Huele a gasolina incluso después de lavarlo dos veces.",
            "Het ruikt naar benzine, zelfs na twee keer wassen.",
            "Nawet po dwóch praniach śmierdzi benzyną.",
        ),
        (
            "The dye smell is so strong that my eyes started watering.",
            "Der Farbgeruch ist so stark, dass meine Augen tränten.",
            "L'odeur de teinture est si forte que mes yeux ont commencé à pleurer.",
            "El olor a tinte es tan fuerte que me lloraban los ojos.",
        ),
        (
            "The whole room smells like solvent since I opened the box.",
            "Seit ich den Karton geöffnet habe, riecht das ganze Zimmer nach Lösungsmittel.",
            "Toute la pièce sent le solvant depuis que j'ai ouvert la boîte.",
            "Toda la habitación huele a disolvente desde que abrí la caja.",
        ),
        (
            "There is a sharp toxic smell and I felt dizzy after trying it on.",
            "Es riecht beißend giftig und mir wurde nach dem Anprobieren schwindelig.",
            "Il y a une odeur toxique piquante et j'ai eu des vertiges après l'avoir essayé.",
            "Tiene un olor tóxico muy fuerte y me mareé al probármelo.",
        ),
        (
            "The smell of chemicals made me feel sick.",
            "Der Chemiegeruch hat mir Übelkeit verursacht.",
            "L'odeur de produits chimiques m'a rendu malade.",
            "El olor a productos químicos me hizo sentir mal.",
        ),
    ],
    "injury": [
        (
            "A nail is sticking out of the insole and cut my foot.",
            "Ein Nagel ragt aus der Innensohle und hat mir den Fuß aufgeschnitten.",
            "Un clou dépasse de la semelle intérieure et m'a coupé le pied.",
            "Un clavo sobresale de la plantilla y me cortó el pie.",
            "Er steekt een spijker uit de binnenzool die mijn voet heeft opengehaald.",
            "Z wkładki wystaje gwóźdź, który rozciął mi stopę.",
        ),
        (
            "I found a needle inside the sleeve and pricked my finger.",
            "Ich habe eine Nadel im Ärmel gefunden und mich in den Finger gestochen.",
            "J'ai trouvé une aiguille dans la manche et je me suis piqué le doigt.",
            "Encontré una aguja dentro de la manga y me pinché el dedo.",
            "Ik vond een naald in de mouw en prikte in mijn vinger.",
            "Znalazłam igłę w rękawie i ukłułam się w palec.",
        ),
        (
            "The buckle has a sharp edge that scratched my hand until it bled.",
            "Die Schnalle hat eine scharfe Kante, an der ich mir die Hand blutig gekratzt habe.",
            "La boucle a un bord tranchant qui m'a écorché la main jusqu'au sang.",
            "La hebilla tiene un borde afilado que me arañó la mano hasta sangrar.",
        ),
        (
            "The heel broke off while I was walking and I fell down the stairs.",
            "Der Absatz brach beim Gehen ab und ich bin die Treppe hinuntergefallen.",
            "Le talon s'est cassé pendant que je marchais et je suis tombée dans l'escalier.",
            "El tacón se rompió mientras caminaba y me caí por las escaleras.",
            "De hak brak af tijdens het lopen en ik viel van de trap.",
            "Obcas odpadł podczas chodzenia i spadłam ze schodów.",
        ),
        (
            "The sole is so slippery that I slipped on a wet floor and hurt my knee.",
            "Die Sohle ist so rutschig, dass ich auf nassem Boden ausgerutscht bin und mir das Knie verletzt habe.",
            "La semelle est si glissante que j'ai glissé sur un sol mouillé et je me suis blessée au genou.",
            "La suela es tan resbaladiza que me resbalé en un suelo mojado y me hice daño en la rodilla.",
        ),
        (
            "A metal piece in the zipper is loose and sharp enough to cut skin.",
            "Ein Metallteil im Reißverschluss ist lose und so scharf, dass man sich schneiden kann.",
            "Une pièce métallique de la fermeture éclair est desserrée et assez tranchante pour couper la peau.",
            "Una pieza metálica de la cremallera está suelta y es tan afilada que corta la piel.",
        ),
    ],
    "complaint": [
        (
            "It is too small, I need one size bigger.",
            "Es ist zu klein, ich brauche eine Nummer größer.",
            "C'est trop petit, il me faut une taille au-dessus.",
            "Es demasiado pequeño, necesito una talla más.",
            "Het is te klein, ik heb een maat groter nodig.",
            "Jest za mały, potrzebuję rozmiar większy.",
        ),
        (
            "The colour is much darker than in the pictures.",
            "Die Farbe ist viel dunkler als auf den Bildern.",
            "La couleur est beaucoup plus foncée que sur les photos.",
            "El color es mucho más oscuro que en las fotos.",
            "De kleur is veel donkerder dan op de foto's.",
            "Kolor jest dużo ciemniejszy niż na zdjęciach.",
        ),
        (
            "The parcel arrived five days late.",
            "Das Paket kam fünf Tage zu spät.",
            "Le colis est arrivé avec cinq jours de retard.",
            "El paquete llegó con cinco días de retraso.",
            "Het pakket kwam vijf dagen te laat.",
            "Paczka przyszła z pięciodniowym opóźnieniem.",
        ),
        (
            "There is a stain on the front that does not wash out.",
            "Vorne ist ein Fleck, der beim Waschen nicht rausgeht.",
            "Il y a une tache sur le devant qui ne part pas au lavage.",
            "Hay una mancha en la parte delantera que no sale al lavarla.",
            "Er zit een vlek op de voorkant die er niet uit gaat.",
            "Z przodu jest plama, która nie schodzi w praniu.",
        ),
        (
            "The label was torn and the price tag was missing.",
            "Das Etikett war eingerissen und das Preisschild fehlte.",
            "L'étiquette était déchirée et le prix manquait.",
            "La etiqueta estaba rota y faltaba el precio.",
        ),
        (
            "It smells strongly of perfume, as if someone had worn it before.",
            "Es riecht stark nach Parfüm, als hätte es schon jemand getragen.",
            "Il sent fortement le parfum, comme si quelqu'un l'avait déjà porté.",
            "Huele mucho a perfume, como si alguien ya lo hubiera usado.",
            "Het ruikt sterk naar parfum, alsof iemand het al gedragen heeft.",
            "Mocno pachnie perfumami, jakby ktoś już to nosił.",
        ),
        (
            "The smell of cigarette smoke is really unpleasant.",
            "Der Geruch nach Zigarettenrauch ist wirklich unangenehm.",
            "L'odeur de cigarette est vraiment désagréable.",
            "El olor a tabaco es muy desagradable.",
        ),
        (
            "It shows clear signs of wear on the sole.",
            "Die Sohle zeigt deutliche Gebrauchsspuren.",
            "La semelle présente des signes d'usure évidents.",
            "La suela muestra claros signos de uso.",
            "De zool vertoont duidelijke gebruikssporen.",
            "Podeszwa ma wyraźne ślady użytkowania.",
        ),
        (
            "The fabric feels rough on my skin and is not as soft as described.",
            "Der Stoff fühlt sich auf der Haut rau an und ist nicht so weich wie beschrieben.",
            "Le tissu est rêche sur la peau et moins doux qu'annoncé.",
            "La tela es áspera en la piel y no tan suave como se describe.",
        ),
        (
            "The heel is higher than shown in the photos.",
            "Der Absatz ist höher als auf den Fotos.",
            "Le talon est plus haut que sur les photos.",
            "El tacón es más alto que en las fotos.",
        ),
        (
            "The zipper broke the second time I used it.",
            "Der Reißverschluss ging beim zweiten Benutzen kaputt.",
            "La fermeture éclair s'est cassée à la deuxième utilisation.",
            "La cremallera se rompió la segunda vez que la usé.",
            "De rits ging bij het tweede gebruik kapot.",
            "Zamek zepsuł się przy drugim użyciu.",
        ),
        (
            "A button fell off after the first wash.",
            "Nach der ersten Wäsche ist ein Knopf abgefallen.",
            "Un bouton est tombé après le premier lavage.",
            "Se cayó un botón después del primer lavado.",
        ),
        (
            "The sole is a bit stiff and the shoes squeak when I walk.",
            "Die Sohle ist etwas steif und die Schuhe quietschen beim Gehen.",
            "La semelle est un peu rigide et les chaussures grincent quand je marche.",
            "La suela es algo rígida y los zapatos chirrían al caminar.",
        ),
        (
            "The new shoe smell is quite strong but it fades after a day.",
            "Der Neugeruch der Schuhe ist recht stark, verfliegt aber nach einem Tag.",
            "L'odeur de neuf est assez forte mais elle disparaît après une journée.",
            "El olor a nuevo es bastante fuerte pero se va después de un día.",
        ),
        (
            "The seams are crooked and there are loose threads everywhere.",
            "Die Nähte sind schief und überall hängen lose Fäden.",
            "Les coutures sont de travers et il y a des fils qui dépassent partout.",
            "Las costuras están torcidas y hay hilos sueltos por todas partes.",
        ),
        (
            "I was charged twice for the same order.",
            "Mir wurde dieselbe Bestellung zweimal berechnet.",
            "On m'a facturé deux fois la même commande.",
            "Me cobraron dos veces el mismo pedido.",
        ),
        (
            "The material is thinner than expected and you can see through it.",
            "Das Material ist dünner als erwartet und durchsichtig.",
            "La matière est plus fine que prévu et transparente.",
            "El material es más fino de lo esperado y se transparenta.",
        ),
        (
            "The glitter comes off and sticks to my skin and clothes.",
            "Der Glitzer löst sich und klebt an meiner Haut und Kleidung.",
            "Les paillettes se détachent et collent à ma peau et à mes vêtements.",
            "La purpurina se cae y se pega a la piel y a la ropa.",
        ),
    ],
    "closer": [
        (
            "I would like a refund.",
            "Ich möchte mein Geld zurück.",
            "Je souhaite être remboursé.",
            "Quiero que me devuelvan el dinero.",
            "Ik wil graag mijn geld terug.",
            "Proszę o zwrot pieniędzy.",
        ),
        (
            "Please tell me how to return it.",
            "Bitte sagen Sie mir, wie ich es zurückschicken kann.",
            "Dites-moi comment le renvoyer, s'il vous plaît.",
            "Por favor, díganme cómo devolverlo.",
            "Laat me alstublieft weten hoe ik het kan retourneren.",
            "Proszę o informację, jak to zwrócić.",
        ),
        (
            "This is not acceptable.",
            "Das ist nicht akzeptabel.",
            "Ce n'est pas acceptable.",
            "Esto no es aceptable.",
            "Dit is niet acceptabel.",
            "To jest nie do przyjęcia.",
        ),
        (
            "I expect an answer soon.",
            "Ich erwarte eine baldige Antwort.",
            "J'attends une réponse rapide.",
            "Espero una respuesta pronto.",
        ),
        (
            "Please check your products more carefully.",
            "Bitte prüfen Sie Ihre Produkte sorgfältiger.",
            "Merci de contrôler vos produits plus attentivement.",
            "Por favor, revisen sus productos con más cuidado.",
        ),
        (
            "Other customers should be warned.",
            "Andere Kunden sollten gewarnt werden.",
            "Les autres clients devraient être prévenus.",
            "Habría que avisar a otros clientes.",
        ),
    ],
}

Parts = list[tuple[str, int]]  # (bank name, entry index): a claim's language-independent content


def _entry(rng: random.Random, bank: str, lang: str, exclude: Parts | None = None) -> tuple[str, int]:
    """A random entry of `bank` that has a `lang` text and is not already used."""
    k = LANGS.index(lang)
    options = [i for i, e in enumerate(BANKS[bank]) if len(e) > k and (bank, i) not in (exclude or [])]
    return bank, pick(rng, options)


def compose(rng: random.Random, lang: str, case: str | None) -> Parts:
    """Sentence plan of one claim: `case` is a safety case type, or None for a generic complaint."""
    core: Parts = []
    if case is None:
        core.append(_entry(rng, "complaint", lang))
        if rng.random() < 0.35:
            core.append(_entry(rng, "complaint", lang, core))
    else:
        core.append(_entry(rng, case, lang))
        r = rng.random()
        if r < 0.15:
            core.append(_entry(rng, case, lang, core))
        elif r < 0.35:  # a safety claim that also complains about something ordinary
            extra = _entry(rng, "complaint", lang)
            core.insert(rng.randrange(2), extra)
    head = [_entry(rng, "opener", lang)] if rng.random() < 0.75 else []
    tail = [_entry(rng, "closer", lang)] if rng.random() < 0.6 else []
    return head + core + tail


def render(parts: Parts, lang: str) -> str:
    k = LANGS.index(lang)
    return " ".join(BANKS[bank][i][k] for bank, i in parts)


def languages_of(parts: Parts) -> list[str]:
    """Languages in which every sentence of `parts` exists (always en/de/fr/es)."""
    n = min(len(BANKS[bank][i]) for bank, i in parts)
    return list(LANGS[:n])


def _original_lang(rng: random.Random) -> str:
    return weighted(rng, ORIGINAL_LANGS)


def generate_claims(
    rng: random.Random,
    n: int,
    start: date = date(2026, 1, 1),
    months: int = 7,
    n_unlabeled: int | None = None,
    translate_fraction: float = 0.3,
    positive_fraction: float = 0.4,
    traffic_positive_rate: float = 0.02,
) -> list[dict]:
    """`n` labeled (escalated) claims plus their translations, and `n_unlabeled` traffic claims.

    The labeled set has exactly round(n * positive_fraction) positives (so tiny test sets still
    hold both classes); traffic defaults to 3n comments with ~2% safety-in-spirit, mostly not
    escalated. Output is sorted by created_at, then id.
    """
    n_unlabeled = 3 * n if n_unlabeled is None else n_unlabeled
    n_pos = round(n * positive_fraction)
    is_pos = [True] * n_pos + [False] * (n - n_pos)
    rng.shuffle(is_pos)
    out: list[dict] = []
    for i, (pos, ts) in enumerate(zip(is_pos, spread_timestamps(rng, n, start, months))):
        lang, case = _original_lang(rng), weighted(rng, SAFETY_CASES) if pos else None
        parts = compose(rng, lang, case)
        rec = {
            "id": f"claim-{i + 1:06d}",
            "text": render(parts, lang),
            "language": lang,
            "created_at": ts,
            "label": int(pos),
            "case_type": case or "not_product_safety",
            "escalated": True,
        }
        out.append(rec)
        if rng.random() < translate_fraction:
            targets = [x for x in languages_of(parts) if x != lang]
            for tl in sorted(rng.sample(targets, 2), key=LANGS.index):
                out.append(
                    {
                        **rec,
                        "id": f"{rec['id']}-tr-{tl}",
                        "text": render(parts, tl),
                        "language": tl,
                        "source_id": rec["id"],
                    }
                )
    for i, ts in enumerate(spread_timestamps(rng, n_unlabeled, start, months)):
        lang = _original_lang(rng)
        case = weighted(rng, SAFETY_CASES) if rng.random() < traffic_positive_rate else None
        escalated = rng.random() < (0.5 if case else 0.04)
        out.append(
            {
                "id": f"traffic-{i + 1:06d}",
                "text": render(compose(rng, lang, case), lang),
                "language": lang,
                "created_at": ts,
                "label": None,
                "case_type": None,
                "escalated": escalated,
            }
        )
    return sorted(out, key=lambda r: (r["created_at"], r["id"]))
