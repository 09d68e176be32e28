//! The booking half of the scripted policy: offering a meeting, listing
//! slots, booking the chosen one, and what to do when the calendar fails
//! (offer a callback) or a booking's outcome is unknown (confirm by email).

use serde_json::json;

use super::ScriptedBrain;
use super::lines;
use super::records::{OfferedSlot, match_slot, read_slots};
use super::state::{Booking, Lookup};
use super::turn::Turn;
use crate::brain::action::{FollowUp, ToolName, ToolResultView};
use crate::brain::understanding::{Confirmation, Question, SlotChoice};

impl ScriptedBrain {
    pub(super) fn offer_meeting(&mut self, turn: &mut Turn) {
        let owner = match &self.state.crm {
            Lookup::Found(record) => record.owner.clone(),
            _ => None,
        };
        turn.say(lines::offer_meeting(
            &mut self.state.wording,
            owner.as_deref(),
        ));
        self.state.booking = Booking::Offered;
        self.state.asked.push(Question::MeetingInterest);
        self.state.awaiting = Some(Question::MeetingInterest);
    }

    pub(super) fn after_meeting_offer(&mut self, turn: &mut Turn, answer: Option<Confirmation>) {
        match answer {
            Some(Confirmation::Yes) => {
                turn.say("Great, let me check the calendar.");
                self.state.booking = Booking::FetchingSlots;
                self.call_tool(
                    turn,
                    ToolName::ChilipiperSlots,
                    json!({ "email": self.state.signals.email }),
                );
            }
            Some(Confirmation::No) => {
                self.state.booking = Booking::Declined;
                turn.say("No problem at all.");
                let line = lines::self_serve_close(&mut self.state.wording);
                self.close(turn, Some(line));
            }
            None if self.state.times_asked(Question::MeetingInterest) < 2 => {
                self.state.asked.push(Question::MeetingInterest);
                self.state.awaiting = Some(Question::MeetingInterest);
                turn.say("Sorry, would you like me to book that call? Yes or no is fine.");
            }
            None => {
                self.state.booking = Booking::Declined;
                let line = lines::self_serve_close(&mut self.state.wording);
                self.close(turn, Some(line));
            }
        }
    }

    pub(super) fn after_slots(&mut self, turn: &mut Turn, result: ToolResultView) {
        let slots = match result {
            ToolResultView::Ok { value } => read_slots(&value),
            _ => Vec::new(),
        };
        if slots.is_empty() {
            return self
                .offer_callback(turn, "I can't get to open times on the calendar right now.");
        }
        let offered: Vec<OfferedSlot> = slots
            .into_iter()
            .take(self.config.max_slots_offered.max(1))
            .collect();
        self.present_slots(turn, offered);
    }

    pub(super) fn present_slots(&mut self, turn: &mut Turn, offered: Vec<OfferedSlot>) {
        let labels: Vec<&str> = offered.iter().map(|s| s.label.as_str()).collect();
        turn.say(lines::list_slots(&labels));
        self.state.booking = Booking::ChoosingSlot { slots: offered };
        self.state.asked.push(Question::SlotChoice);
        self.state.awaiting = Some(Question::SlotChoice);
    }

    pub(super) fn after_slot_choice(
        &mut self,
        turn: &mut Turn,
        choice: Option<SlotChoice>,
        answer: Option<Confirmation>,
    ) {
        let Booking::ChoosingSlot { slots } = self.state.booking.clone() else {
            return self.advance(turn);
        };
        // "Yes" to a single offered time picks it.
        let picked = match (choice, answer, slots.as_slice()) {
            (Some(choice), _, _) => match_slot(&choice, &slots).cloned(),
            (None, Some(Confirmation::Yes), [only]) => Some(only.clone()),
            _ => None,
        };
        match picked {
            Some(slot) => {
                turn.say(format!("Booking {} for you now.", slot.label));
                let remaining = slots.iter().filter(|s| s.id != slot.id).cloned().collect();
                let args = json!({ "email": self.state.signals.email, "slot_id": slot.id });
                self.state.booking = Booking::Booking { slot, remaining };
                self.call_tool(turn, ToolName::ChilipiperBook, args);
            }
            None if answer == Some(Confirmation::No) => {
                self.offer_callback(turn, "Understood, none of those work.")
            }
            None if self.state.times_asked(Question::SlotChoice) < 2 => {
                self.state.asked.push(Question::SlotChoice);
                self.state.awaiting = Some(Question::SlotChoice);
                let labels: Vec<&str> = slots.iter().map(|s| s.label.as_str()).collect();
                turn.say(format!(
                    "Sorry, which one would you like? {}",
                    lines::list_slots(&labels)
                ));
            }
            None => self.offer_callback(turn, "Let's find a time another way."),
        }
    }

    pub(super) fn after_booking(&mut self, turn: &mut Turn, result: ToolResultView) {
        let Booking::Booking { slot, remaining } = self.state.booking.clone() else {
            return;
        };
        let email = self.state.signals.email.clone().unwrap_or_default();
        match result {
            ToolResultView::Ok { .. } => {
                turn.say(format!(
                    "You're booked for {}. A calendar invite is on its way to {email}.",
                    slot.label
                ));
                self.state.booking = Booking::Booked { slot };
                let line = lines::goodbye(&mut self.state.wording);
                self.close(turn, Some(line));
            }
            ToolResultView::UnknownOutcome { .. } => {
                turn.say(format!(
                    "I can't tell for sure whether that booking went through, so rather than risk booking you twice, \
                     we'll confirm it by email at {email}."
                ));
                turn.follow_up(FollowUp::ConfirmBookingByEmail {
                    email,
                    slot_id: slot.id.clone(),
                });
                self.state.booking = Booking::Unconfirmed { slot };
                let line = lines::goodbye(&mut self.state.wording);
                self.close(turn, Some(line));
            }
            ToolResultView::NotFound if !remaining.is_empty() => {
                turn.say("It looks like that time was just taken.");
                self.present_slots(turn, remaining);
            }
            ToolResultView::NotFound | ToolResultView::Failed { .. } => {
                self.offer_callback(turn, "I wasn't able to complete the booking.");
            }
        }
    }

    pub(super) fn offer_callback(&mut self, turn: &mut Turn, lead_in: &str) {
        turn.say(format!(
            "{lead_in} Would you like someone from our team to reach out to find a time with you?"
        ));
        self.state.booking = Booking::CallbackOffered;
        self.state.asked.push(Question::Callback);
        self.state.awaiting = Some(Question::Callback);
    }

    pub(super) fn after_callback_offer(&mut self, turn: &mut Turn, answer: Option<Confirmation>) {
        if answer == Some(Confirmation::Yes) {
            turn.follow_up(FollowUp::Callback {
                email: self.state.signals.email.clone(),
            });
            turn.say("Done, I've passed that on and someone from our team will reach out.");
        } else {
            turn.say("No problem. You can book a time any time from your trial dashboard.");
        }
        let line = lines::goodbye(&mut self.state.wording);
        self.close(turn, Some(line));
    }
}
