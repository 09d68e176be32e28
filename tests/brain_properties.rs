//! Invariants over arbitrary input: reading a transcript never panics, and
//! the scripted brain only ever moves along valid stage transitions and
//! answers every tool call it makes exactly once.

use proptest::prelude::*;
use serde_json::json;
use voxguard::brain::understanding::{Question, extract_answering, parse_number};
use voxguard::brain::{
    Action, BrainState, ScriptedBrain, ScriptedConfig, Stage, StartContext, ToolResultView,
};
use voxguard::resilience::ErrorKind;

const WORDS: &[&str] = &[
    "yes",
    "no",
    "eight",
    "people",
    "hundred",
    "thousand",
    "dozen",
    "a",
    "few",
    "docs",
    "a month",
    "jane",
    "at",
    "acme",
    "dot",
    "com",
    "hubspot",
    "asap",
    "the",
    "first",
    "one",
    "tuesday",
    "10",
    "2,500",
    "3k",
    "frustrating",
    "law",
    "firm",
    "none",
    "sure",
    "not",
    "bye",
    "of us",
    "team",
    "hr",
    "rapid",
    "said",
    "monday",
];

fn utterance() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(WORDS), 0..12).prop_map(|words| words.join(" "))
}

fn outcome() -> impl Strategy<Value = ToolResultView> {
    prop_oneof![
        Just(ToolResultView::Ok {
            value: json!({ "slots": [{ "id": "s1", "label": "Tuesday at 10 AM" }], "owner": "Dana" })
        }),
        Just(ToolResultView::Ok { value: json!({}) }),
        Just(ToolResultView::NotFound),
        Just(ToolResultView::Failed {
            kind: ErrorKind::Timeout
        }),
        Just(ToolResultView::UnknownOutcome {
            kind: ErrorKind::Timeout
        }),
    ]
}

proptest! {
    #[test]
    fn extraction_never_panics_on_any_text(text in any::<String>(), question in 0usize..11) {
        let questions = [
            Question::TeamSize, Question::MonthlyVolume, Question::Integrations, Question::Urgency, Question::Industry,
            Question::Email, Question::ConfirmEmail, Question::ValueFit, Question::MeetingInterest, Question::SlotChoice,
            Question::Callback,
        ];
        let _ = extract_answering(&text, Some(questions[question]));
        let _ = parse_number(&text);
    }

    #[test]
    fn number_words_in_any_order_never_overflow(words in prop::collection::vec(prop::sample::select(&["hundred", "thousand", "million", "dozen", "ninety", "nine", "and"][..]), 0..40)) {
        let _ = parse_number(&words.join(" "));
    }

    #[test]
    fn the_script_keeps_stages_valid_and_answers_each_tool_call_once(
        turns in prop::collection::vec((utterance(), prop::collection::vec(outcome(), 0..3)), 1..25),
        seed in any::<u64>(),
    ) {
        let mut brain = ScriptedBrain::new(ScriptedConfig { seed, ..ScriptedConfig::default() });
        let mut stage = Stage::Greeting;
        let mut open_calls: Vec<String> = Vec::new();
        let absorb = |actions: Vec<Action>, stage: &mut Stage, open: &mut Vec<String>| -> Result<(), TestCaseError> {
            for action in actions {
                match action {
                    Action::SetStage { stage: next } => {
                        prop_assert!(stage.can_transition_to(next), "{:?} -> {:?}", stage, next);
                        *stage = next;
                    }
                    Action::CallTool { call_id, .. } => {
                        prop_assert!(!open.contains(&call_id), "call ids are unique");
                        open.push(call_id);
                    }
                    _ => {}
                }
            }
            Ok(())
        };
        absorb(brain.on_start(&StartContext::default()), &mut stage, &mut open_calls)?;
        for (text, outcomes) in turns {
            absorb(brain.on_user(&text, &BrainState { stage }), &mut stage, &mut open_calls)?;
            for result in outcomes {
                if open_calls.is_empty() { break; }
                let call_id = open_calls.remove(0);
                absorb(brain.on_tool_result(&call_id, result), &mut stage, &mut open_calls)?;
            }
        }
        prop_assert_eq!(brain.state().pending.len(), open_calls.len(), "the brain tracks exactly the unanswered calls");
    }
}
