"""Routing behaviour: one case per rule, the design samples and the labelled set."""

from __future__ import annotations

from typing import Any

import pytest
from router_support import OPEN, read_jsonl

from services.router import routing
from services.router.learned import default_model_path, load_model
from services.router.policy import DecisionInput, Policy
from services.router.policy.examples import run_examples
from services.router.policy.report import evaluate
from shared.events import Action, Channel, PatronRole

CASES = [
    # rule id, channel, text, role, action, department
    ("crisis-suicide", "chat", "no reason to live anymore", None, "escalate_crisis", "care-team"),
    (
        "crisis-self-harm",
        "sms",
        "im going to hurt myself tonight",
        None,
        "escalate_crisis",
        "care-team",
    ),
    (
        "crisis-violence",
        "email",
        "My roommate threatened me with a knife",
        None,
        "escalate_crisis",
        "care-team",
    ),
    ("crisis-abuse", "chat", "my boyfriend hits me", None, "escalate_crisis", "care-team"),
    (
        "crisis-unsafe",
        "chat",
        "a man is following me and I feel unsafe",
        None,
        "escalate_crisis",
        "care-team",
    ),
    ("crisis-suicide-topic", "chat", "suicide", None, "escalate_crisis", "care-team"),
    ("crisis-self-harm-topic", "sms", "self harm", None, "escalate_crisis", "care-team"),
    ("crisis-violence-topic", "chat", "there is a shooter", None, "escalate_crisis", "care-team"),
    ("crisis-abuse-topic", "email", "abuse at home", None, "escalate_crisis", "care-team"),
    ("crisis-unsafe-topic", "chat", "my ex is stalking me", None, "escalate_crisis", "care-team"),
    (
        "crisis-signals",
        "sms",
        "i cant do this anymore. bought a rope today",
        None,
        "escalate_crisis",
        "care-team",
    ),
    (
        "counseling-support",
        "sms",
        "my anxiety is really bad",
        None,
        "refer_counseling",
        "counseling",
    ),
    (
        "counseling-stress",
        "chat",
        "so much stress at home lately",
        None,
        "refer_counseling",
        "counseling",
    ),
    (
        "circulation-managers",
        "sms",
        "why do i have a library bill",
        None,
        "email_circulation",
        "circulation-managers",
    ),
    (
        "faculty-requests",
        "chat",
        "Can we schedule an instruction session?",
        "faculty",
        "refer_faculty",
        "faculty-support",
    ),
    (
        "faculty-requests-self-identified",
        "email",
        "As an instructor I'd like to request a purchase",
        None,
        "refer_faculty",
        "faculty-support",
    ),
    (
        "faculty-requests-spanish",
        "chat",
        "Soy profesor de historia y quiero que compren un libro para mis alumnos",
        None,
        "refer_faculty",
        "faculty-support",
    ),
    ("circulation-loans", "chat", "How long can I keep a DVD?", None, "transfer", "nw-circulation"),
    (
        "writing-center",
        "chat",
        "how do I cite a podcast in MLA",
        None,
        "transfer",
        "writing-center",
    ),
    ("tutoring", "sms", "need a biology tutor appointment", None, "transfer", "tutoring"),
    ("campus-ne", "chat", "Can I talk to a Northeast librarian?", None, "transfer", "campus-ne"),
    (
        "campus-nw",
        "chat",
        "is there a northwest campus librarian online",
        None,
        "transfer",
        "campus-nw",
    ),
    (
        "campus-se",
        "chat",
        "I have an assignment from my SE campus class",
        None,
        "transfer",
        "campus-se",
    ),
    (
        "campus-south",
        "chat",
        "I need help with my South campus assignment",
        None,
        "transfer",
        "campus-south",
    ),
    (
        "campus-tr",
        "chat",
        "Can I talk to a Trinity River librarian?",
        None,
        "transfer",
        "campus-tr",
    ),
    (
        "campus-connect",
        "chat",
        "can someone from TCC Connect help with my assignment",
        None,
        "transfer",
        "campus-connect",
    ),
    ("reference-greeting", "sms", "hello? can someone help me", None, "answer", "reference"),
    (
        "reference-default",
        "chat",
        "Do you have books on the Harlem Renaissance?",
        None,
        "answer",
        "reference",
    ),
]


def decide(policy: Policy, channel: str, text: str, role: str | None = None) -> Any:
    """Decide one message received while the desk is open."""
    inp = DecisionInput(
        channel=Channel(channel),
        text=text,
        received_at=OPEN,
        patron_role=PatronRole(role or "unknown"),
    )
    return policy.decide(inp)


@pytest.mark.parametrize(
    ("rule_id", "channel", "text", "role", "action", "dept"), CASES, ids=[c[0] for c in CASES]
)
def test_each_rule_routes(
    policy: Policy, rule_id: str, channel: str, text: str, role: str | None, action: str, dept: str
) -> None:
    """Given a message typical of a rule, then that rule wins and routes as the policy says."""
    got = decide(policy, channel, text, role)
    assert (got.action.value, got.department) == (action, dept)
    assert got.rules[0].rule_id == rule_id
    assert got.rules[0].matched or rule_id == "reference-default"


def test_every_rule_has_a_case(policy: Policy) -> None:
    """The table above covers every rule in the shipped policy."""
    assert {c[0] for c in CASES} == {r.id for r in policy.doc.rules}


@pytest.mark.parametrize("row", read_jsonl("routing_samples.jsonl"), ids=lambda r: r["text"][:40])
def test_design_samples(policy: Policy, row: dict[str, Any]) -> None:
    """Every labelled sample from the design routes as labelled."""
    got = decide(policy, row["channel"], row["text"], row.get("patron_role"))
    assert (got.action.value, got.department) == (
        row["expect"]["action"],
        row["expect"]["department"],
    )


def test_labelled_set_accuracy(policy: Policy) -> None:
    """Crisis recall is total, no idiom escalates, and overall accuracy is at least 90%."""
    report = evaluate(policy, read_jsonl("labelled.jsonl"))
    assert sum(report.total.values()) >= 220
    assert report.total[Action.ESCALATE_CRISIS.value] >= 40
    assert report.idioms >= 30
    assert report.crisis_recall() == 1.0, report.misses
    assert report.idiom_escalations == 0, report.misses
    assert report.accuracy() >= 0.9, report.markdown()
    for action in Action:
        assert report.total[action.value] > 0


@pytest.mark.parametrize(
    "text",
    [
        "this essay is killing me",
        "I'm dying to read it",
        "this class will be the death of me",
        "I could kill for a coffee",
        "shoot me an email",
        "dead tired after work",
        "the deadline is killing me",
        "my mom is going to kill me when she sees my grades",
    ],
)
def test_idioms_do_not_escalate(policy: Policy, text: str) -> None:
    """Crisis-sounding idioms are not crises."""
    assert decide(policy, "chat", text).action is not Action.ESCALATE_CRISIS


@pytest.mark.parametrize(
    "text", ["911", "911!!", "someone call 911 please", "HELP 911", "llamen al 911 por favor"]
)
def test_a_text_of_911_escalates(policy: Policy, text: str) -> None:
    """A patron's "911" was routed to the reference desk's queue (risk 0.00: no letters)."""
    got = decide(policy, "sms", text)
    assert got.action is Action.ESCALATE_CRISIS and got.rules[0].rule_id == "crisis-unsafe"


@pytest.mark.parametrize(
    "text", ["is 911 free from a campus phone?", "room 911 is locked", "what does 911 mean in APA"]
)
def test_a_question_about_911_does_not_escalate(policy: Policy, text: str) -> None:
    assert decide(policy, "sms", text).action is not Action.ESCALATE_CRISIS


def test_crisis_wins_over_everything(policy: Policy) -> None:
    """A crisis statement inside a routine question still escalates, urgently."""
    got = decide(policy, "chat", "can I renew my book? honestly I want to kill myself")
    assert got.action is Action.ESCALATE_CRISIS
    assert got.priority.value == "urgent"


def test_policy_examples_pass(policy: Policy) -> None:
    """The examples in the policy file itself all route as written."""
    assert run_examples(policy, now=OPEN) == []


# ---- crisis cue categories: one strong cue, or weak cues from two categories, escalate ----

CRISIS_BY_CATEGORY = {
    "means": [
        "I keep thinking about stepping in front of a train",
        "how many sleeping pills would it take",
        "i have the pills lined up on my desk",
        "I want to drive my car into a tree",
    ],
    "farewell": [
        "i left goodbye notes for my family",
        "please return my books after I'm gone",
        "I won't be a problem for anyone much longer",
        "giving away all my stuff this week",
        "tonight is the night",
    ],
    "self-harm": [
        "my friend is cutting again",
        "im cuttin again",
        "she has fresh cuts on her arms",
        "I burned myself again last night",
    ],
    "ideation": [
        "kms",
        "i might unalive myself",
        "he doesn't want to wake up anymore",
        "whats the point of being alive",
    ],
    "violence": [
        "a guy in my class said he's bringing a gun tomorrow",
        "I could hurt him, I know where he parks",
        "someone is posting threats against our professor",
        "my ex keeps texting me threats",
    ],
    "abuse": [
        "my stepdad slaps me",
        "my husband won't let me leave the house",
        "I'm afraid of my boyfriend",
        "I have bruises from my partner",
    ],
    "unsafe": [
        "there's someone outside my door with a bat",
        "a man has been watching me in the study room",
        "my ex showed up at my apartment again",
        "I'm scared my boyfriend will kill me",
    ],
    "finality": [
        "this is probably my last email to all of you, thank you",
        "if i miss class tell everyone it was never their fault",
        "she's been saying her goodbyes all week",
    ],
    "means-at-hand": [
        "there's a revolver in my glovebox and i keep thinking of using it on myself",
        "how much melatonin is too much, asking for me",
        "googling lethal doses of my meds, it's not for a paper",
        "took half a bottle of painkillers with whiskey",
    ],
    "harm-by-others": [
        "my mom's boyfriend threw a lamp at me last night",
        "he locked my little sister in the bathroom again",
        "my brother said he'll snap my wrist if i tell",
        "my ex is parked outside the building and there's a restraining order, i'm hiding",
    ],
    "patron-threat": [
        "I'm going to make my lab partner pay for what he did, I know exactly when he's alone",
    ],
    "friend-in-danger": [
        "my friend posted sorry for everything and now she's not answering",
        "my roommate cuts and it's really deep this time, she won't go to the hospital",
        "my friend gave me all her jewelry and says she won't need it anymore",
    ],
    "two-weak-cues": [
        "i cant take it anymore. i have the rope",
        "bought a gun. dont tell anyone",
        "can you renew my books, I won't be around after this week",
    ],
}

NOT_CRISIS = {
    "research": [
        "I need sources on suicide prevention for my paper",
        "domestic violence statistics for Texas",
        "articles about gun violence in schools",
        "books on the history of firearms",
        "I'm doing a presentation on stalking laws",
    ],
    "idiom": [
        "this essay is killing me",
        "dying to read it",
        "shoot me an email",
        "my laptop died",
        "it just hit me that the paper is due",
        "I'm going to die if I fail this test lol",
    ],
    "one-weak-cue": [
        "do you have books on bridge engineering",
        "I won't be around next week, can I renew online?",
        "is this the last time I can renew this book?",
        "the printer keeps cutting off my pages",
        "I'm giving away my old textbooks, do you take donations?",
        "I'm not in danger or anything, I just want to talk to someone",
        "it's my last semester, can alumni keep library access?",
        "I bought a rope for climbing club, any books on knots?",
    ],
    "coursework": [
        "lethal dose of acetaminophen for my pharmacology class",
        "interactions between alcohol and sleeping pills for my nursing exam",
        "sources on restraining orders for my criminal justice paper",
        "I'm writing about Virginia Woolf's life and her suicide for English",
        "how to write a will, for my business law class",
    ],
    "reading": [
        "the chapter where she takes her own life",
        "I need the scene where they kill themselves in Romeo and Juliet",
        "Do you have the book A Time to Kill?",
    ],
}


@pytest.mark.parametrize(
    ("category", "text"),
    [(c, t) for c, texts in CRISIS_BY_CATEGORY.items() for t in texts],
    ids=lambda v: v[:40],
)
def test_crisis_cue_categories_escalate(policy: Policy, category: str, text: str) -> None:
    """Implicit statements of each cue category escalate, first or third person."""
    got = decide(policy, "sms", text)
    assert got.action is Action.ESCALATE_CRISIS, (category, got.rules)
    assert got.rules[0].matched


@pytest.mark.parametrize(
    ("kind", "text"),
    [(k, t) for k, texts in NOT_CRISIS.items() for t in texts],
    ids=lambda v: v[:40],
)
def test_crisis_lookalikes_do_not_escalate(policy: Policy, kind: str, text: str) -> None:
    """Research topics, idioms, plots and a single weak cue do not escalate by themselves."""
    assert decide(policy, "chat", text).action is not Action.ESCALATE_CRISIS, kind


@pytest.mark.parametrize(
    "text",
    [
        "I'm not suicidal, just stressed about my family and need someone to talk to",
        "im not going to hurt myself, i just need someone to talk to",
    ],
)
def test_negated_ideation_goes_to_counseling(policy: Policy, text: str) -> None:
    """Negated ideation alone is a counseling referral, not a crisis."""
    assert decide(policy, "chat", text).action is Action.REFER_COUNSELING


def test_negation_does_not_hide_another_cue(policy: Policy) -> None:
    """A negation masks only its own words; another cue still escalates."""
    text = "im not suicidal but i have the rope ready"
    assert decide(policy, "chat", text).action is Action.ESCALATE_CRISIS
    text = "i cant stop thinking about killing myself"
    assert decide(policy, "chat", text).action is Action.ESCALATE_CRISIS


def test_crisis_dev_set(policy: Policy) -> None:
    """The crisis development set: every crisis escalates, no look-alike does."""
    report = evaluate(policy, read_jsonl("crisis_dev.jsonl"))
    assert report.total[Action.ESCALATE_CRISIS.value] >= 80
    assert report.idioms >= 40
    assert report.crisis_recall() == 1.0, report.misses
    assert report.idiom_escalations == 0, report.misses


def test_crisis_dev2_set(policy: Policy) -> None:
    """The second development set (general patterns, not holdout3 paraphrases)."""
    report = evaluate(policy, read_jsonl("crisis_dev2.jsonl"))
    assert report.total[Action.ESCALATE_CRISIS.value] >= 40
    assert report.idioms >= 20
    assert report.crisis_recall() == 1.0, report.misses
    assert report.idiom_escalations == 0, report.misses


@pytest.mark.parametrize("name", ["holdout.jsonl", "holdout2.jsonl", "holdout3.jsonl"])
def test_holdout_crisis_recall(policy: Policy, name: str) -> None:
    """Crisis recall on the earlier hold-out sets, with no false escalation."""
    report = evaluate(policy, read_jsonl(name))
    assert report.crisis_recall() == 1.0, report.misses
    assert report.idiom_escalations == 0, report.misses


# ---- Spanish first-person statements of intent, plan, means or a decided farewell ----
# (the rules read ASCII letters only: an accented letter splits a word, "decidí" -> "decid")


@pytest.mark.parametrize(
    "text",
    [
        "pienso matarme",
        "me voy a matar",
        "me quiero matar",
        "me quiero morir, en serio",
        "me quiero quitar la vida",
        "ya no quiero seguir viviendo",
        "voy a acabar con todo esto",
        "tengo las pastillas listas",
        "me voy a cortar otra vez",
        "kiero cortarme las venas ya no puedo mas",
        "ya no kiero vivir xq nadie me extraña",
        "hoy me voy a aventar del puente, ya lo decidí",
        "me quiero matar jaja no es broma, ya escribí la carta",
        "ya escribí mi carta de despedida",
        "hola! tienen libros de enfermería en español? "
        "tambien pienso matarme, ya tengo cómo hacerlo",
        "1) ¿tienen JSTOR?\n2) ¿cómo pido un libro de otra biblioteca?\n"
        "3) si alguien quiere desaparecer para siempre, ¿hay algún número? Ya tengo todo listo.",
        "oye cuando vence mi libro de quimica? lo quiero renovar\n"
        "ya lo tengo pensado, no voy a estar para la fecha",
        "a q hora abren mañana. y de paso, voy a acabar con todo esto hoy en la noche",
        "mi amiga dice que se va a quitar la vida esta noche, qué hago",
    ],
    ids=lambda v: v[:40],
)
def test_spanish_intent_escalates_by_rules(policy: Policy, text: str) -> None:
    """A Spanish statement of intent escalates on the rules alone, in any place of a message."""
    got = decide(policy, "chat", text)
    assert got.action is Action.ESCALATE_CRISIS, got.rules
    assert got.rules[0].rule_id.startswith("crisis-")


@pytest.mark.parametrize(
    "text",
    [
        "me voy a matar estudiando para el final",
        "me voy a matar de risa con este profe",
        "me muero de risa",
        "me muero de hambre, se puede comer en la biblio?",
        "me muero de sueño",
        "me muero de vergüenza",
        "me muero de nervios por mi presentación",
        "el profe me va a matar",
        "mi mamá va a matarme si repruebo",
        "me mata la tarea",
        "quiero matar a mi impresora jaja",
        "me quiero matar jaja llevo 3 horas buscando articulos",
        "me quiero morir de la vergüenza jaja, perdí el libro",
        "me quiero morir se me borro todo el trabajo",
        "me voy a cortar el pelo antes de la presentación",
        "me voy a cortar las uñas",
        "se me está cortando la llamada",
        "la fila de la impresora está de muerte",
        "tienen Crónica de una muerte anunciada?",
        "busco fuentes para mi ensayo sobre el suicidio en adolescentes",
        "el actor se quitó la vida según las noticias",
        "hace dos años quise quitarme la vida, ya estoy bien con terapia",
        "no me quiero matar, solo estoy estresado, hay consejeria?",
        "no estoy pensando en hacerme daño, solo necesito hablar con alguien",
        "no quiero vivir con mis papás, hay ayuda de vivienda?",
        "no quiero despertar temprano mañana",
        "voy a acabar con todo el trabajo hoy",
        "ya me despedí de mis amigos porque me mudo a Houston",
        "no voy a estar aquí para devolverlo, me voy de viaje",
        "ya no aguanto el calor, tienen pastillas para el dolor de cabeza?",
        "el libro trata de un chico que se quiere matar",
    ],
    ids=lambda v: v[:40],
)
def test_spanish_idioms_and_decoys_do_not_escalate(policy: Policy, text: str) -> None:
    """Spanish idioms, research, the news and a past that is over are no crisis."""
    assert decide(policy, "chat", text).action is not Action.ESCALATE_CRISIS


@pytest.mark.parametrize(
    "text",
    [
        "Hay un hombre armado en la biblioteca del campus NE",
        "Escuché disparos cerca de la biblioteca, ¿qué hago?",
        "están disparando en el estacionamiento",
        "hay una balacera afuera de la biblioteca",
        "hay un tirador activo en el edificio",
        "un estudiante trae una pistola en el salón",
        "Voy a llevar un arma a la escuela mañana",
        "alguien dice que va a traer una pistola a la clase el lunes",
        "mi ex me amenazó con matarme si lo dejo",
        "mi pareja me golpea cuando toma",
        "mi papá nos pega y no quiero regresar",
        "mi novio me pegó anoche y está afuera",
    ],
)
def test_spanish_violence_happening_now_escalates_by_rules(policy: Policy, text: str) -> None:
    """An outside probe: "Hay un hombre armado en la biblioteca" was answered at the desk
    (the English "a man with a gun" escalates), and partner violence only by the net."""
    got = decide(policy, "chat", text)
    assert got.action is Action.ESCALATE_CRISIS, got.rules
    assert got.rules[0].rule_id in ("crisis-violence", "crisis-abuse")


@pytest.mark.parametrize(
    "text",
    [
        "ensayo sobre tiroteos escolares en Texas",
        "la película es sobre un hombre armado",
        "mi hermano me pegó la gripa",
        "se me pega la canción",
        "su papá le pegaba durante años, ya se fue de la casa y está bien",
        "escuché que hay tutorías los sábados",
        "necesito libros sobre la violencia doméstica",
    ],
)
def test_spanish_violence_decoys_do_not_escalate(policy: Policy, text: str) -> None:
    assert decide(policy, "chat", text).action is not Action.ESCALATE_CRISIS


@pytest.mark.parametrize("channel", [Channel.CHAT, Channel.EMAIL])
def test_a_keep_rule_never_holds_back_the_nets_crisis_reading(
    policy: Policy, channel: Channel
) -> None:
    """`faculty-requests-spanish` is kept over the net's suggested route, and had been kept
    over its crisis reading too: an instructor's report of a student bringing a weapon went to
    Faculty Support (an outside review)."""
    model = load_model(default_model_path())
    report = (
        "Profesora Ramírez aquí: un alumno dijo que va a traer un arma mañana a mi clase,"
        " ¿pueden dar una clase sobre bases de datos?"
    )
    got = routing.decide(
        policy, model, DecisionInput(channel=channel, text=report, received_at=OPEN)
    )
    assert (got.action, got.department) == (Action.ESCALATE_CRISIS, "care-team")
    assert "faculty-requests-spanish" in [r.rule_id for r in got.rules]
    request = "Profesora Ramírez aquí: ¿pueden dar una clase de bases de datos a mi grupo?"
    got = routing.decide(
        policy, model, DecisionInput(channel=channel, text=request, received_at=OPEN)
    )
    assert (got.action, got.department) == (Action.REFER_FACULTY, "faculty-support")


@pytest.mark.parametrize(
    "text",
    [
        "Hola soy estudiante, mis estudiantes compañeros y yo queremos un taller de Excel",
        "soy profe de zumba en el gimnasio, ¿tienen un taller de bienestar para estudiantes?",
        "Soy la profesora de mi hija en casa (homeschool), ¿puedo comprar un libro en la tienda?",
        "mi profesora dijo que el libro está en reserva, ¿cómo lo saco?",
    ],
)
def test_spanish_messages_that_are_not_instructors_stay_at_the_desk(
    policy: Policy, text: str
) -> None:
    got = routing.decide(
        policy,
        load_model(default_model_path()),
        DecisionInput(channel=Channel.CHAT, text=text, received_at=OPEN),
    )
    assert got.action is not Action.REFER_FACULTY, [r.rule_id for r in got.rules]
