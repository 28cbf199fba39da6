"""The compiled policy: desk hours, rules and texts, and `decide` for one message.

Evaluation order: an SMS that is one keyword and nothing else (a carrier keyword: STOP,
START, HELP...; or one of the policy's `sms_keywords`: HOURS, HORARIO...) is decided as that
keyword at the policy's keyword department, by nothing else: no rule, no net, no hand-off, no
after-hours acknowledgement; except a help word (HELP, INFO, AYUDA) in a conversation where a
crisis was escalated, which is routed as a message (it may be a cry for help). Every other
message: crisis rules first (whole text, no
corrections or negation cues); then the other rules in file order, first match wins. When the
learned model's assessment is given, services.router.learned.nets.combine then decides whether
it escalates, flags for safety review or replaces the rules' route (its order is written
there). The winner's department decides the hand-off; a live transfer with nobody Online
becomes a ticket; a department with someone Online gets no after-hours acknowledgement (staff
are there: the hand-off says they will join). Patron texts are in the message's language when
the policy has it. A follow-up in a conversation the circulation managers were emailed about
that names a patron, TCC ID or item goes to them again (the policy's first email_circulation
rule), however it routed on its own.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo

from services.router.learned.model import Assessment
from services.router.learned.nets import combine
from shared.events import SMS_KEYWORD_RULE, Action, Channel, Priority, RuleHit, StaffGuidance

from . import texts
from .checks import KIND_OF_ACTION, text_values
from .decision import Decision, DecisionInput
from .extract import Extractor
from .guidance import guidance_for
from .hours import DeskHours
from .matcher import TermIndex, TermRef
from .model import Department, DepartmentKind, PolicyDoc, Rule, Settings, phrase_key
from .normalise import Normaliser
from .own_words import OwnWords
from .ruleset import Context, RuleSet

_NEGATION, _CORRECTION = 0, 1
ENGLISH = "en"

LEARNED_CRISIS = Rule(
    id="learned-crisis",
    crisis=True,
    action=Action.ESCALATE_CRISIS,
    department="care-team",
    summary=(
        "The learned net scored a likely crisis in wording the rules do not know: read it now;"
        " if it is one, file a CARE Team report and refer to Counseling."
    ),
)
"""The pseudo-rule a model escalation is recorded under (staff see why it escalated)."""
LEARNED_ROUTE = "learned-route"
SMS_KEYWORD = SMS_KEYWORD_RULE
"""The pseudo-rule a keyword's decision is recorded under."""
CIRCULATION_FOLLOW_UP = "circulation-follow-up"
"""The pseudo-rule of a follow-up sent to the circulation managers because it names a patron,
TCC ID or item (its matched words are the fields' names, never their values)."""
DESK_MAIL = "desk-department-mail"
"""The pseudo-rule of an email from one of the desk's own departments (its contact address:
the circulation managers answering the email refdesk sent them): read at the desk, never
answered, handed off or forwarded by refdesk (an answer, a hand-off or a second circulation
email to their reply had made a loop)."""
HELP_WORDS = frozenset({"HELP", "INFO", "AYUDA"})
"""Keywords that ask for help (with the policy's carrier `help` words): in a crisis
conversation such a text is routed as a message of the crisis, never answered with the
keyword's reply ("Escriba su pregunta... Pueden aplicarse tarifas"); opt-out and opt-in words
stay keywords there too."""
_KEYWORD = re.compile(r"\s*[¡¿]*\s*([A-Za-z]+)[\s.!?,;:]*")
"""A text of one word, with surrounding whitespace, trailing punctuation and Spanish opening
marks ("Stop." "HELP?" "¡PARAR!" "¿Horario?")."""
COURTESY = (
    "please",
    "pls",
    "plz",
    "thanks",
    "thank you so much",
    "thank you",
    "thx",
    "ty",
    "ok",
    "okay",
    "hi",
    "hello",
    "hey",
    "right now",
    "now",
    "anymore",
    "any more",
    "por favor",
    "porfa",
    "muchas gracias",
    "gracias",
    "hola",
    "buenas",
    "ya",
)
"""Words around a keyword or an opt-out phrase that do not change it ("PARAR por favor",
"hi, stop texting me now, thank you so much"), dropped before the text is compared."""
EVERYDAY = frozenset({"CANCEL", "CANCELAR", "REVOKE", "INFO"})
"""Keywords that are everyday words too ("cancel please" may answer "shall I cancel your
hold?"): a keyword only when texted alone, as Twilio reads them."""
_COURTESY = re.compile(rf"^(?:(?:{'|'.join(COURTESY)}) )*(.*?)(?: (?:{'|'.join(COURTESY)}))*$")
Consent = Literal["opt_out", "opt_in", "resume"]
PHRASE_MAX = 80
"""The longest text compared with the opt-out phrases (they are a few words each)."""


class Texts:
    """One language's prerendered patron texts."""

    def __init__(
        self,
        handoff: dict[str, dict[Channel, str]],
        fallback: dict[str, dict[Channel, str]],
        ack: dict[Channel, str],
        keywords: dict[str, str],
    ) -> None:
        """Keep the texts by department id and channel."""
        self.handoff = handoff
        self.fallback = fallback
        self.ack = ack
        self.keywords = keywords


class Policy:
    """One version of the routing policy, compiled once and safe to share between tasks."""

    def __init__(
        self,
        doc: PolicyDoc,
        *,
        version: str,
        lines: dict[tuple[str | int, ...], int],
        routing_version: str = "",
    ) -> None:
        """Compile a validated document (use load_policy rather than calling this)."""
        self.doc = doc
        self.version = version
        self.routing_version = routing_version
        """What decides where a message goes, without the keyword replies' words
        (`loader.routing_version`): the learned net is trained against it."""
        self.label = doc.label
        self.lines = lines
        self.links: dict[str, str] = dict(doc.links)
        self._by_address: dict[str, Department] = {}
        for department in doc.departments:  # the first department named keeps its address
            for address in (department.contact, *department.also_from):
                self._by_address.setdefault(address.lower(), department)
        self.settings: Settings = doc.settings
        self.hours = DeskHours(ZoneInfo(doc.timezone), doc.hours.week(), doc.hours_exceptions)
        self._norm = Normaliser(doc.normalise.shorthand)
        self._crisis = RuleSet((r for r in doc.rules if r.crisis), self._norm)
        self._general = RuleSet((r for r in doc.rules if not r.crisis), self._norm)
        self._cues = TermIndex()
        for cue in doc.normalise.negation_cues:
            self._cues.add_phrase(self._norm.tokens(cue), TermRef(_NEGATION, 0))
        for cue in doc.normalise.corrections:
            self._cues.add_phrase(self._norm.tokens(cue), TermRef(_CORRECTION, 0))
        self._cues.freeze()
        self._extractor = Extractor(doc.extract)
        values = text_values(doc)
        self._departments = {d.id: d for d in doc.departments}
        self._catch_all = next(r for r in reversed(doc.rules) if not r.crisis)
        self._texts = {ENGLISH: self._english(doc, values)}
        for code, tr in doc.languages.items():
            in_lang = text_values(doc, code)
            self._texts[code] = Texts(
                {
                    d.id: {
                        ch: texts.prerender(t, {**in_lang, "name": d.name, "contact": d.contact})
                        for ch, t in tr.handoff.get(d.id, d.handoff).items()
                    }
                    for d in doc.departments
                },
                {
                    d.id: {
                        ch: texts.prerender(t, {**in_lang, "name": d.name, "contact": d.contact})
                        for ch, t in tr.fallback.items()
                    }
                    for d in doc.departments
                    if d.fallback is not None
                },
                {ch: texts.prerender(t, in_lang) for ch, t in tr.after_hours_ack.items()},
                {k: texts.prerender(t, in_lang) for k, t in tr.sms_keywords.items()},
            )
        self.own_words = OwnWords(
            text
            for t in self._texts.values()
            for text in (
                *(x for by in t.handoff.values() for x in by.values()),
                *(x for by in t.fallback.values() for x in by.values()),
                *t.ack.values(),
                *t.keywords.values(),
            )
        )
        """refdesk's own sentences, taken out of a message before it is decided (`routing`)."""
        self._learned_routes: dict[tuple[Action, str], Rule] = {}
        carrier = doc.sms_carrier_keywords
        self._consent: dict[str, Consent] = {w: "opt_out" for w in carrier.opt_out}
        self._consent.update({w: "opt_in" for w in carrier.opt_in})
        self._carrier = frozenset((*carrier.opt_out, *carrier.opt_in, *carrier.help))
        self._resume = frozenset(carrier.resume)
        # a phrase asking the desk to stop texting is recorded as the first opt-out word, and
        # confirmed in its language (Twilio confirms and blocks only its keywords alone)
        self._opt_out_phrases = dict.fromkeys(carrier.opt_out_phrases, ENGLISH)
        self._phrase_replies = {ENGLISH: carrier.opt_out_phrase_reply}
        for code, tr in doc.languages.items():
            self._opt_out_phrases.update(dict.fromkeys(tr.opt_out_phrases, code))
            self._phrase_replies[code] = tr.opt_out_phrase_reply
        self._phrase_word = carrier.opt_out[0] if carrier.opt_out else None
        self._help_words = HELP_WORDS.union(carrier.help) - self._consent.keys()
        self._circulation_rule = next(
            (r for r in doc.rules if r.action is Action.EMAIL_CIRCULATION and not r.crisis), None
        )
        self._keyword_rule = Rule(
            id=SMS_KEYWORD,
            action=Action.ANSWER,
            department=carrier.department,
            summary="A text keyword (STOP, START, HELP, HOURS...): refdesk answered it; nothing"
            " to do unless the patron writes more.",
        )

    @staticmethod
    def _english(doc: PolicyDoc, values: dict[str, str]) -> Texts:
        """The policy's own (English) texts, prerendered."""
        return Texts(
            {
                d.id: {
                    ch: texts.prerender(t, {**values, "name": d.name, "contact": d.contact})
                    for ch, t in d.handoff.items()
                }
                for d in doc.departments
            },
            {
                d.id: {
                    ch: texts.prerender(t, {**values, "name": d.name, "contact": d.contact})
                    for ch, t in d.fallback.message.items()
                }
                for d in doc.departments
                if d.fallback is not None
            },
            {ch: texts.prerender(t, values) for ch, t in doc.after_hours_ack.items()},
            {k: texts.prerender(t, values) for k, t in doc.sms_keywords.items()},
        )

    @property
    def languages(self) -> frozenset[str]:
        """The languages the policy has patron texts in."""
        return frozenset(self._texts)

    def _learned_rule(self, route: tuple[Action, str]) -> Rule | None:
        """The pseudo-rule for a route the model suggested, None if this policy cannot take it."""
        if route == (LEARNED_CRISIS.action, LEARNED_CRISIS.department):
            return LEARNED_CRISIS if LEARNED_CRISIS.department in self._departments else None
        rule = self._learned_routes.get(route)
        if rule is None:
            action, dept_id = route
            dept = self._departments.get(dept_id)
            if dept is None or dept.kind is not KIND_OF_ACTION[action]:
                return None
            rule = Rule(id=LEARNED_ROUTE, action=action, department=dept_id)
            self._learned_routes[route] = rule
        return rule

    @property
    def desk(self) -> Department:
        """The reference desk itself (the department of kind desk): where staff on duty read."""
        return next(d for d in self.doc.departments if d.kind is DepartmentKind.DESK)

    def department(self, dept_id: str) -> Department:
        """A department by id; KeyError when the policy has none."""
        return self._departments[dept_id]

    def department_of_address(self, address: str | None) -> Department | None:
        """The department whose contact address (or one of its `also_from`) this is, if any
        (case-insensitive)."""
        return self._by_address.get(address.strip().lower()) if address else None

    def desk_mail(self, decision: Decision, sender: Department) -> Decision:
        """A department's own email, decided: a crisis it reports stays a crisis (staff may
        write about a student in danger); anything else is read at the desk, with no hand-off,
        acknowledgement, fallback or circulation email."""
        if decision.action is Action.ESCALATE_CRISIS:
            return decision
        hit = RuleHit.model_construct(rule_id=DESK_MAIL, matched=[sender.id])
        return decision.model_copy(
            update={
                "action": Action.ANSWER,
                "department": self.desk.id,
                "rules": [hit],
                "handoff_text": None,
                "guidance": StaffGuidance(),
                "fallback": None,
                "after_hours_ack": None,
                "safety_review": False,
            }
        )

    def is_open(self, dt: datetime) -> bool:
        """True when the desk is open at an aware datetime."""
        return self.hours.is_open(dt)

    def next_open(self, dt: datetime) -> datetime:
        """`dt` when the desk is open, else when it next opens (in the policy timezone)."""
        return self.hours.next_open(dt)

    def describe_next_open(self, dt: datetime, lang: str = ENGLISH) -> str:
        """When the desk next opens after `dt`, as a patron reads it in `lang`."""
        return self.hours.describe(self.hours.next_open(dt), dt, lang)

    def _filled(self, text: str, received_at: datetime, lang: str) -> str:
        """A prerendered text with its runtime placeholders filled for a message's moment:
        when the desk next opens, and the hours exception in force or coming."""
        return texts.fill_runtime(
            text,
            self.describe_next_open(received_at, lang),
            self.hours.exception_note(received_at, lang),
        )

    def sms_keyword(self, inp: DecisionInput) -> tuple[str, str] | None:
        """The keyword an SMS consists of, upper case, and the language its reply is chosen
        in; None when the message is anything more (or not an SMS). Courtesy words around it
        are no more ("STOP please", "PARAR por favor"), and a whole text that asks the desk
        to stop texting is its first opt-out word ("no more texts please")."""
        if inp.channel is not Channel.SMS or inp.subject:
            return None
        found = _KEYWORD.fullmatch(inp.text)
        if found is None:
            if len(inp.text) > PHRASE_MAX:
                return None
            core = _without_courtesy(phrase_key(inp.text))
            found = _KEYWORD.fullmatch(core)
            if found is not None and found.group(1).upper() in EVERYDAY:
                return None
            if found is None:
                phrase_lang = self._opt_out_phrases.get(core)
                if phrase_lang is None or self._phrase_word is None:
                    return None
                return self._phrase_word, phrase_lang
        word = found.group(1).upper()
        for code, tx in self._texts.items():
            if word in tx.keywords:
                return word, code  # the keyword says which language the patron texts in
        return (word, ENGLISH) if word in self._carrier else None

    def _confirmation(self, inp: DecisionInput, word: str, lang: str) -> str | None:
        """The confirmation of an opt-out Twilio does not confirm itself: a phrase, or an
        opt-out word with more around it ("stop please"); None for a text that is the word
        alone (Twilio's opt-out handling answers that one)."""
        if self._consent.get(word) != "opt_out" or word in self._texts[lang].keywords:
            return None
        alone = _KEYWORD.fullmatch(inp.text)
        if alone is not None and alone.group(1).upper() == word:
            return None
        return self._phrase_replies.get(lang) or self._phrase_replies.get(ENGLISH)

    def _keyword_decision(self, inp: DecisionInput, word: str, lang: str) -> Decision:
        """A keyword answered as one: its reply, if the policy has one, and nothing else."""
        dept = self._departments[self._keyword_rule.department]
        reply = self._texts[lang].keywords.get(word) or self._confirmation(inp, word, lang)
        if reply and "{" in reply:
            reply = self._filled(reply, inp.moment, lang)
        # not an overnight ticket whatever the hour: refdesk answered it, staff have nothing to do
        return Decision.model_construct(
            action=Action.ANSWER,
            department=dept.id,
            priority=Priority.NORMAL,
            overnight=False,
            rules=[RuleHit.model_construct(rule_id=SMS_KEYWORD, matched=[word.lower()])],
            guidance=guidance_for(self._keyword_rule, dept, "", self._extractor, None),
            keyword_reply=reply,
            policy_version=self.version,
            lang=lang,
            sms_keyword=word,
            sms_consent=self._consent.get(word),
        )

    def decide(
        self,
        inp: DecisionInput,
        *,
        online: frozenset[str] | None = None,
        seen: Assessment | None = None,
    ) -> Decision:
        """Route one message; `online` lists departments with someone Online (None: all);
        `seen` is the learned model's assessment (None: the rules alone, in English); a
        keyword is decided as one whatever the model saw, except a help word in a crisis
        conversation (routed as the message it may be)."""
        keyword = self.sms_keyword(inp)
        if keyword is not None and not (inp.crisis_conversation and keyword[0] in self._help_words):
            return self._keyword_decision(inp, *keyword)
        decision = self._routed(inp, online=online, seen=seen)
        if inp.circulation_emailed:
            decision = self._circulation_follow_up(inp, decision)
        if self.resumes(inp):  # YES: routed as the answer it may be, and an opt-in after STOP
            return decision.model_copy(update={"sms_consent": "resume"})
        return decision

    def _circulation_follow_up(self, inp: DecisionInput, decision: Decision) -> Decision:
        """A follow-up in a conversation the circulation managers were emailed about, routed
        elsewhere ("my name is Dana Whitfield and my id is 7654321" reads as a transfer to NW
        Circulation), that names a patron, TCC ID or item: to the managers, with what it
        names (the second email). A crisis stays a crisis; one that names nothing stays as
        routed (the conversation keeps its place either way: it is a follow-up)."""
        rule = self._circulation_rule
        if rule is None or decision.action in (Action.ESCALATE_CRISIS, Action.EMAIL_CIRCULATION):
            return decision
        full = f"{inp.subject}\n{inp.text}" if inp.subject else inp.text
        found = self._extractor.extract(full)
        if not found:
            return decision
        dept = self._departments[rule.department]
        handoff = self._texts[decision.lang].handoff[dept.id][inp.channel]
        if "{" in handoff:
            handoff = self._filled(handoff, inp.moment, decision.lang)
        hit = RuleHit.model_construct(rule_id=CIRCULATION_FOLLOW_UP, matched=sorted(found))
        return decision.model_copy(
            update={
                "action": rule.action,
                "department": dept.id,
                "rules": [hit, *decision.rules],
                "handoff_text": handoff,
                "guidance": guidance_for(rule, dept, full, self._extractor, None, inp.patron_name),
                "fallback": None,
            }
        )

    def resumes(self, inp: DecisionInput) -> bool:
        """Whether the SMS is a `resume` word alone ("Yes!"): the number is opted back in if
        its latest change was an opt-out (Twilio's YES), and the text is routed as any other."""
        if inp.channel is not Channel.SMS or inp.subject or not self._resume:
            return False
        found = _KEYWORD.fullmatch(inp.text)
        return found is not None and found.group(1).upper() in self._resume

    def _routed(
        self,
        inp: DecisionInput,
        *,
        online: frozenset[str] | None,
        seen: Assessment | None,
    ) -> Decision:
        """A message that is no keyword, through the rules and the nets."""
        full = f"{inp.subject}\n{inp.text}" if inp.subject else inp.text
        text = self._norm.normalise(full)
        desk_open = self.hours.is_open(inp.received_at)
        neg_ends: set[int] = set()
        cut = 0
        for kind, _, _, end in self._cues.scan(text):
            if kind == _NEGATION:
                neg_ends.add(end)
            else:
                cut = max(cut, end)
        ctx = Context(
            inp.channel,
            inp.patron_role,
            desk_open,
            frozenset(neg_ends),
            self.doc.normalise.negation_window,
            cut,
        )
        crisis = self._crisis.fired(text, ctx)
        general = self._general.fired(text, ctx)  # the checked policy ends with a catch-all
        verdict = combine(
            rules_escalated=bool(crisis),
            rules_default=general[0][0] is self._catch_all,
            seen=seen,
            topic_only=bool(crisis) and all(r.corroborate for r, _ in crisis),
        )
        # a topic word the model did not corroborate is listed after the rule that routes
        fired = general + crisis if verdict.uncorroborated else crisis + general
        rule, _ = fired[0]
        learned = self._learned_rule(verdict.route) if verdict.route is not None else None
        # a `keep` rule is never replaced by the net's suggested route, but always by its
        # crisis reading: "Profesora Ramírez aquí: un alumno dijo que va a traer un arma
        # mañana a mi clase, ¿pueden dar una clase...?" had gone to Faculty Support (a review)
        if (
            learned is not None
            and (not rule.keep or learned.action is Action.ESCALATE_CRISIS)
            and (learned.action, learned.department) != (rule.action, rule.department)
        ):
            rule = learned
            fired = [(learned, []), *fired]
        lang = seen.lang if seen is not None and seen.lang in self._texts else ENGLISH
        tx = self._texts[lang]
        dept = self._departments[rule.department]
        overnight = not desk_open
        handoff = None
        if rule.action is not Action.ANSWER:
            handoff = tx.handoff[dept.id][inp.channel]
        fallback = None
        live = dept.kind is DepartmentKind.LIVE and rule.action is Action.TRANSFER
        # whether someone is Online where the message goes; before any presence is known,
        # assumed while the desk is open and not while it is closed (so a live hand-off never
        # promises "shortly" beside the after-hours acknowledgement)
        staffed = dept.id in online if online is not None else not overnight
        if live and not staffed:
            fallback = f"ticket: nobody Online in {dept.id}"
            handoff = tx.fallback[dept.id][inp.channel]
        # staff Online where the message goes answer it now: "closed" would contradict them;
        # nor is a message decided once the desk has opened (an email dated last night, a
        # backlog) told it is closed: it waits at the top of the queue as an overnight ticket
        closed_now = overnight and not self.hours.is_open(inp.moment)
        ack = tx.ack[inp.channel] if closed_now and not staffed else None
        if handoff and "{" in handoff:
            handoff = self._filled(handoff, inp.moment, lang)
        if ack:
            ack = self._filled(ack, inp.moment, lang)
        if rule.action is Action.ESCALATE_CRISIS:
            priority = Priority.URGENT
        else:
            priority = Priority.HIGH if overnight else Priority.NORMAL
        model_route = None if seen is None else f"{seen.best[0].value}/{seen.best[1]}"
        # every value below is built here from the validated policy, so the models are
        # constructed without re-validation (pydantic validation was a large share of a call)
        return Decision.model_construct(
            action=rule.action,
            department=dept.id,
            priority=priority,
            overnight=overnight,
            rules=[RuleHit.model_construct(rule_id=r.id, matched=words) for r, words in fired],
            handoff_text=handoff,
            guidance=guidance_for(rule, dept, full, self._extractor, fallback, inp.patron_name),
            fallback=fallback,
            after_hours_ack=ack,
            policy_version=self.version,
            lang=lang,
            safety_review=verdict.safety_review,
            risk_score=None if seen is None else round(seen.risk, 4),
            net=verdict.net,
            model_version=None if seen is None else seen.model_version,
            model_route=model_route,
            model_confidence=None if seen is None else round(seen.confidence, 4),
        )


def _without_courtesy(key: str) -> str:
    """A phrase key without the courtesy words around it ("stop texting me please" ->
    "stop texting me")."""
    found = _COURTESY.fullmatch(key)
    return found.group(1) if found else key
