//! The scripted brain as a specification: the happy path through every
//! stage to a booking, and an honest reaction to every tool outcome.

use serde_json::{Value, json};
use voxguard::brain::{
    Action, BrainState, FollowUp, ScriptedBrain, ScriptedConfig, ScriptedState, Stage,
    StartContext, ToolName, ToolResultView,
};
use voxguard::resilience::ErrorKind;

/// Plays the session: follows the brain's stage changes (checking each is a
/// valid transition) and remembers the tool calls it asked for.
struct Session {
    brain: ScriptedBrain,
    stage: Stage,
    stages_seen: Vec<Stage>,
    log: Vec<Action>,
}

impl Session {
    fn start(config: ScriptedConfig, ctx: StartContext) -> (Session, Vec<Action>) {
        let mut session = Session {
            brain: ScriptedBrain::new(config),
            stage: Stage::Greeting,
            stages_seen: vec![Stage::Greeting],
            log: vec![],
        };
        let actions = session.brain.on_start(&ctx);
        session.absorb(&actions);
        (session, actions)
    }

    fn new() -> Session {
        Session::start(ScriptedConfig::default(), StartContext::default()).0
    }

    fn user(&mut self, text: &str) -> Vec<Action> {
        let actions = self.brain.on_user(text, &BrainState { stage: self.stage });
        self.absorb(&actions);
        actions
    }

    fn tool(&mut self, call_id: &str, result: ToolResultView) -> Vec<Action> {
        let actions = self.brain.on_tool_result(call_id, result);
        self.absorb(&actions);
        actions
    }

    fn absorb(&mut self, actions: &[Action]) {
        for action in actions {
            if let Action::SetStage { stage } = action {
                assert!(
                    self.stage.can_transition_to(*stage),
                    "invalid transition {:?} -> {:?}",
                    self.stage,
                    stage
                );
                self.stage = *stage;
                self.stages_seen.push(*stage);
            }
        }
        self.log.extend_from_slice(actions);
    }
}

fn speech(actions: &[Action]) -> String {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Say { text } => Some(text.as_str()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn tool_call(actions: &[Action]) -> Option<(String, ToolName, Value)> {
    actions.iter().find_map(|a| match a {
        Action::CallTool {
            call_id,
            name,
            args,
        } => Some((call_id.clone(), *name, args.clone())),
        _ => None,
    })
}

fn ok(value: Value) -> ToolResultView {
    ToolResultView::Ok { value }
}

fn slots() -> Value {
    json!({ "slots": [
        { "id": "slot-mon", "label": "Monday at 2 PM" },
        { "id": "slot-tue", "label": "Tuesday at 10 AM" },
        { "id": "slot-wed", "label": "Wednesday at 11:30 AM" },
    ]})
}

/// Drives a qualified caller up to the point where the meeting is offered,
/// with lookups answered by `activity` and `crm`.
fn qualified_caller_until_offer(activity: ToolResultView, crm: ToolResultView) -> Session {
    let mut s = Session::new();
    s.user("Hi, we're a law firm, about eight people");
    s.user("twelve hundred docs a month");
    s.user("we use HubSpot");
    s.user("this month ideally");
    s.user("yes, that sounds great");
    let with_email = s.user("sure, it's jane at acme dot com");
    let (amplitude_id, name, args) = tool_call(&with_email).expect("an activity lookup");
    assert_eq!(name, ToolName::AmplitudeActivity);
    assert_eq!(args, json!({ "email": "jane@acme.com" }));
    let (crm_id, name, _) =
        tool_call(&s.tool(&amplitude_id, activity)).expect("a CRM lookup follows");
    assert_eq!(name, ToolName::SalesforceLookup);
    s.tool(&crm_id, crm);
    s
}

#[test]
fn happy_path_walks_every_stage_and_books_the_chosen_slot() {
    let (mut s, hello) = Session::start(ScriptedConfig::default(), StartContext::default());
    assert!(speech(&hello).contains("DocuFlow"));

    let first = s.user("Hi, we're a law firm, about eight people");
    assert!(first.contains(&Action::SetStage {
        stage: Stage::Discovery
    }));
    assert!(
        speech(&first).contains("team of 8"),
        "acknowledges what was said: {}",
        speech(&first)
    );
    assert!(
        speech(&first).contains("documents"),
        "asks for the volume next: {}",
        speech(&first)
    );

    assert!(speech(&s.user("twelve hundred docs a month")).contains("1200 documents a month"));
    assert!(speech(&s.user("we use HubSpot")).contains("HubSpot"));
    let pitch = s.user("this month ideally");
    assert!(pitch.contains(&Action::SetStage {
        stage: Stage::ValueDemo
    }));

    let ask_email = s.user("yes, that sounds great");
    assert!(ask_email.contains(&Action::SetStage {
        stage: Stage::Qualification
    }));
    assert!(speech(&ask_email).contains("email"));

    let offer = s.user("sure, it's jane at acme dot com");
    assert!(offer.contains(&Action::SetStage {
        stage: Stage::NextSteps
    }));
    assert!(speech(&offer).contains("book"));
    let (amplitude_id, _, _) = tool_call(&offer).unwrap();
    let (crm_id, _, _) =
        tool_call(&s.tool(&amplitude_id, ok(json!({ "docs_processed": 140 })))).unwrap();
    assert!(
        s.tool(
            &crm_id,
            ok(json!({ "owner": "Dana Lee", "company": "Acme" }))
        )
        .is_empty()
    );

    let checking = s.user("yes please");
    let (slots_id, name, _) = tool_call(&checking).expect("fetches slots");
    assert_eq!(name, ToolName::ChilipiperSlots);
    let listed = s.tool(&slots_id, ok(slots()));
    assert!(speech(&listed).contains("Tuesday at 10 AM"));

    let booking = s.user("Tuesday at 10 works");
    let (book_id, name, args) = tool_call(&booking).expect("books");
    assert_eq!(name, ToolName::ChilipiperBook);
    assert_eq!(
        args,
        json!({ "email": "jane@acme.com", "slot_id": "slot-tue" })
    );

    let done = s.tool(&book_id, ok(json!({ "booking_id": "b-1" })));
    assert!(speech(&done).contains("You're booked for Tuesday at 10 AM"));
    assert_eq!(done.last(), Some(&Action::EndCall));
    assert_eq!(
        s.stages_seen,
        [
            Stage::Greeting,
            Stage::Discovery,
            Stage::ValueDemo,
            Stage::Qualification,
            Stage::NextSteps,
            Stage::Closing
        ]
    );
}

#[test]
fn discovery_asks_one_missing_thing_at_a_time_and_never_twice() {
    let mut s = Session::new();
    let mut questions = Vec::new();
    for reply in ["hello", "not sure", "hmm", "pass", "no idea"] {
        let said = speech(&s.user(reply));
        assert_eq!(
            said.matches('?').count(),
            1,
            "one question per turn: {said}"
        );
        questions.push(said);
    }
    questions.sort();
    questions.dedup();
    assert_eq!(questions.len(), 5, "five different questions");
    assert_eq!(s.stage, Stage::Discovery);
    s.user("ok");
    assert_eq!(s.stage, Stage::ValueDemo);
}

#[test]
fn a_known_email_starts_the_lookups_with_the_greeting() {
    let ctx = StartContext {
        caller_name: Some("Jane".into()),
        caller_email: Some("jane@acme.com".into()),
    };
    let (_, hello) = Session::start(ScriptedConfig::default(), ctx);
    assert!(speech(&hello).starts_with("Hi Jane"));
    let (_, name, args) = tool_call(&hello).expect("lookup at start");
    assert_eq!(
        (name, args),
        (
            ToolName::AmplitudeActivity,
            json!({ "email": "jane@acme.com" })
        )
    );
}

#[test]
fn the_configured_crm_is_the_one_looked_up() {
    let config = ScriptedConfig {
        crm: voxguard::brain::CrmChoice::HubSpot,
        ..ScriptedConfig::default()
    };
    let ctx = StartContext {
        caller_email: Some("jane@acme.com".into()),
        ..StartContext::default()
    };
    let (mut s, hello) = Session::start(config, ctx);
    let (id, _, _) = tool_call(&hello).unwrap();
    let (_, name, _) = tool_call(&s.tool(&id, ok(json!({})))).unwrap();
    assert_eq!(name, ToolName::HubspotLookup);
}

#[test]
fn failed_lookups_are_carried_on_without_and_never_pretended() {
    for kind in [
        ErrorKind::Timeout,
        ErrorKind::Connect,
        ErrorKind::Status,
        ErrorKind::RateLimited,
        ErrorKind::Decode,
        ErrorKind::BreakerOpen,
    ] {
        let ctx = StartContext {
            caller_email: Some("jane@acme.com".into()),
            ..StartContext::default()
        };
        let (mut s, hello) = Session::start(ScriptedConfig::default(), ctx);
        let (activity_id, _, _) = tool_call(&hello).unwrap();
        let (crm_id, _, _) = tool_call(&s.tool(&activity_id, ToolResultView::Failed { kind }))
            .expect("CRM still looked up");
        assert!(
            s.tool(&crm_id, ToolResultView::Failed { kind }).is_empty(),
            "nothing to say about a failed lookup"
        );
        for reply in ["eight people", "1500 a month", "Slack", "asap"] {
            s.user(reply);
        }
        let pitch = speech(&s.user("we're in logistics"));
        assert!(
            !pitch.contains("I can see"),
            "no invented activity after {kind:?}: {pitch}"
        );
        let offer = speech(&s.user("yes"));
        assert!(
            !offer.contains("looks after your account"),
            "no invented owner after {kind:?}: {offer}"
        );
        assert!(offer.contains("book"));
    }
}

#[test]
fn found_records_personalise_the_pitch_and_the_offer() {
    let ctx = StartContext {
        caller_email: Some("jane@acme.com".into()),
        ..StartContext::default()
    };
    let (mut s, hello) = Session::start(ScriptedConfig::default(), ctx);
    let (activity_id, _, _) = tool_call(&hello).unwrap();
    let (crm_id, _, _) =
        tool_call(&s.tool(&activity_id, ok(json!({ "docs_processed": 140 })))).unwrap();
    s.tool(
        &crm_id,
        ok(json!({ "owner": { "name": "Dana Lee" }, "open_opportunity": true })),
    );
    for reply in ["eight people", "1500 a month", "Slack", "asap"] {
        s.user(reply);
    }
    assert!(speech(&s.user("we're in logistics")).contains("140 documents"));
    assert!(speech(&s.user("yes")).contains("Dana Lee"));
}

#[test]
fn not_found_asks_to_confirm_the_email_once() {
    let ctx = StartContext {
        caller_email: Some("jane@acme.com".into()),
        ..StartContext::default()
    };
    let (mut s, hello) = Session::start(ScriptedConfig::default(), ctx);
    s.user("hi");
    let (activity_id, _, _) = tool_call(&hello).unwrap();
    let (crm_id, _, _) = tool_call(&s.tool(&activity_id, ToolResultView::NotFound)).unwrap();
    s.tool(&crm_id, ToolResultView::NotFound);
    let check = speech(&s.user("about eight people"));
    assert!(
        check.contains("couldn't find a trial under jane@acme.com"),
        "{check}"
    );
    let carry_on = speech(&s.user("yes that's right"));
    assert!(carry_on.contains("carry on"), "{carry_on}");
    assert!(!carry_on.contains("couldn't find"));
    // A later not-found (after another email) does not ask again.
    let (activity_id, _, _) =
        tool_call(&s.user("oh wait, try jane at acme dot io")).expect("looks up again");
    let (crm_id, _, _) = tool_call(&s.tool(&activity_id, ToolResultView::NotFound)).unwrap();
    s.tool(&crm_id, ToolResultView::NotFound);
    s.user("fine");
    assert_eq!(
        s.log
            .iter()
            .filter(|a| matches!(a, Action::Say { text } if text.contains("couldn't find")))
            .count(),
        1
    );
}

#[test]
fn a_corrected_email_is_looked_up_again() {
    let ctx = StartContext {
        caller_email: Some("jane@acme.com".into()),
        ..StartContext::default()
    };
    let (mut s, hello) = Session::start(ScriptedConfig::default(), ctx);
    let (activity_id, _, _) = tool_call(&hello).unwrap();
    let (crm_id, _, _) = tool_call(&s.tool(&activity_id, ToolResultView::NotFound)).unwrap();
    let check = s.tool(&crm_id, ToolResultView::NotFound);
    assert!(
        speech(&check).contains("Is that the email"),
        "asks at once when nothing else is pending"
    );
    let relook = s.user("oh, it's jane at acme dot io");
    let (_, name, args) = tool_call(&relook).expect("looks up the corrected email");
    assert_eq!(
        (name, args),
        (
            ToolName::AmplitudeActivity,
            json!({ "email": "jane@acme.io" })
        )
    );
}

#[test]
fn a_failed_lookup_is_retried_when_the_caller_asks_or_repeats_the_email_and_never_otherwise() {
    let ctx = StartContext {
        caller_email: Some("jane@acme.com".into()),
        ..StartContext::default()
    };
    let (mut s, hello) = Session::start(ScriptedConfig::default(), ctx);
    let (activity_id, _, _) = tool_call(&hello).unwrap();
    let (crm_id, _, _) =
        tool_call(&s.tool(&activity_id, ok(json!({"docs_processed": 40})))).expect("CRM looked up");
    let kind = ErrorKind::Timeout;
    assert!(s.tool(&crm_id, ToolResultView::Failed { kind }).is_empty());

    assert_eq!(
        tool_call(&s.user("we're about eight people")),
        None,
        "an ordinary answer does not retry a failed lookup"
    );
    let (retry_id, name, args) =
        tool_call(&s.user("could you try again?")).expect("asked to retry, it looks up again");
    assert_eq!(
        (name, args),
        (
            ToolName::SalesforceLookup,
            json!({ "email": "jane@acme.com" })
        ),
        "only the lookup that failed is run again"
    );
    assert_eq!(
        tool_call(&s.user("yes, try again")),
        None,
        "no second lookup while one is running"
    );
    assert!(
        s.tool(&retry_id, ToolResultView::Failed { kind })
            .is_empty()
    );
    let (_, name, _) = tool_call(&s.user("it's jane@acme.com"))
        .expect("giving the same email again retries the failed lookup");
    assert_eq!(name, ToolName::SalesforceLookup);
}

fn until_slots_listed() -> (Session, String) {
    let mut s = qualified_caller_until_offer(ok(json!({})), ok(json!({})));
    let (slots_id, _, _) = tool_call(&s.user("yes")).unwrap();
    s.tool(&slots_id, ok(slots()));
    (s, slots_id)
}

#[test]
fn every_failure_kind_on_the_calendar_offers_a_callback() {
    let kinds = [
        ErrorKind::Timeout,
        ErrorKind::Connect,
        ErrorKind::Status,
        ErrorKind::RateLimited,
        ErrorKind::Decode,
        ErrorKind::BreakerOpen,
        ErrorKind::BulkheadFull,
        ErrorKind::BudgetExhausted,
        ErrorKind::Deadline,
    ];
    for kind in kinds {
        let mut s = qualified_caller_until_offer(ok(json!({})), ok(json!({})));
        let (slots_id, _, _) = tool_call(&s.user("yes")).unwrap();
        let offer = s.tool(&slots_id, ToolResultView::Failed { kind });
        assert!(
            speech(&offer).contains("reach out"),
            "{kind:?}: {}",
            speech(&offer)
        );
        assert!(tool_call(&offer).is_none(), "no blind retry after {kind:?}");
        let accepted = s.user("yes please");
        assert!(accepted.contains(&Action::FollowUp {
            follow_up: FollowUp::Callback {
                email: Some("jane@acme.com".into())
            }
        }));
        assert_eq!(accepted.last(), Some(&Action::EndCall));
    }
}

#[test]
fn a_failed_booking_offers_a_callback_and_declining_still_closes_politely() {
    let (mut s, _) = until_slots_listed();
    let (book_id, _, _) = tool_call(&s.user("the first one")).unwrap();
    let offer = s.tool(
        &book_id,
        ToolResultView::Failed {
            kind: ErrorKind::Status,
        },
    );
    assert!(speech(&offer).contains("wasn't able to complete the booking"));
    let declined = s.user("no thanks");
    assert!(
        !declined
            .iter()
            .any(|a| matches!(a, Action::FollowUp { .. }))
    );
    assert!(speech(&declined).contains("dashboard"));
    assert_eq!(s.stage, Stage::Closing);
}

#[test]
fn an_unknown_booking_outcome_is_confirmed_by_email_never_rebooked() {
    let (mut s, _) = until_slots_listed();
    let (book_id, _, _) = tool_call(&s.user("the second one")).unwrap();
    let honest = s.tool(
        &book_id,
        ToolResultView::UnknownOutcome {
            kind: ErrorKind::Timeout,
        },
    );
    assert!(speech(&honest).contains("confirm it by email at jane@acme.com"));
    assert!(honest.contains(&Action::FollowUp {
        follow_up: FollowUp::ConfirmBookingByEmail {
            email: "jane@acme.com".into(),
            slot_id: "slot-tue".into()
        }
    }));
    assert!(tool_call(&honest).is_none(), "never re-books");
    assert_eq!(honest.last(), Some(&Action::EndCall));
    assert!(
        s.user("can you just book it again?").is_empty(),
        "the call is over"
    );
}

#[test]
fn a_slot_taken_meanwhile_reoffers_the_others() {
    let (mut s, _) = until_slots_listed();
    let (book_id, _, _) = tool_call(&s.user("the last one")).unwrap();
    let reoffer = speech(&s.tool(&book_id, ToolResultView::NotFound));
    assert!(
        reoffer.contains("just taken")
            && reoffer.contains("Monday at 2 PM")
            && !reoffer.contains("Wednesday")
    );
    let (_, _, args) = tool_call(&s.user("Monday please")).unwrap();
    assert_eq!(args["slot_id"], "slot-mon");
}

#[test]
fn an_unqualified_caller_gets_self_serve_help_and_no_meeting() {
    let mut s = Session::new();
    for reply in [
        "just me",
        "a few hundred",
        "nothing really",
        "just exploring",
        "real estate",
    ] {
        s.user(reply);
    }
    let close = s.user("yes");
    assert!(!s.log.iter().any(|a| matches!(
        a,
        Action::CallTool {
            name: ToolName::ChilipiperSlots,
            ..
        }
    )));
    assert_eq!(close.last(), Some(&Action::EndCall));
    assert_eq!(s.stage, Stage::Closing);
}

#[test]
fn frustration_moves_to_friction_rescue_and_back() {
    let mut s = Session::new();
    s.user("hello");
    let rescue = s.user("this is so frustrating, the upload is not working");
    assert!(rescue.contains(&Action::SetStage {
        stage: Stage::FrictionRescue
    }));
    assert!(speech(&rescue).contains("sorry"));
    let back = s.user("ok, about ten people");
    assert!(back.contains(&Action::SetStage {
        stage: Stage::Discovery
    }));
}

#[test]
fn same_seed_same_conversation_and_seeds_vary_the_wording() {
    let script = |seed: u64| {
        let config = ScriptedConfig {
            seed,
            ..ScriptedConfig::default()
        };
        let (mut s, hello) = Session::start(config, StartContext::default());
        let mut all = hello;
        for reply in [
            "hi",
            "eight people",
            "2,500 a month",
            "Zapier",
            "next quarter",
            "finance",
            "yes",
        ] {
            all.extend(s.user(reply));
        }
        all
    };
    assert_eq!(script(7), script(7));
    assert!(
        (0..8).any(|seed| script(seed) != script(7)),
        "some seed words things differently"
    );
}

#[test]
fn a_saved_state_resumes_exactly() {
    let mut uninterrupted = qualified_caller_until_offer(ok(json!({})), ok(json!({})));
    let saved: ScriptedState =
        serde_json::from_str(&serde_json::to_string(uninterrupted.brain.state()).unwrap())
            .expect("state round-trips");
    let mut resumed = ScriptedBrain::resume(ScriptedConfig::default(), saved);
    let session = BrainState {
        stage: uninterrupted.stage,
    };
    assert_eq!(resumed.on_user("yes", &session), uninterrupted.user("yes"));
}

#[test]
fn unknown_tool_call_ids_are_ignored() {
    let mut s = Session::new();
    assert!(s.tool("not-mine", ok(json!({}))).is_empty());
}
