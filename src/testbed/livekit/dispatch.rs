//! How the stand-in hands out a job, as LiveKit does on a room join: ask a
//! registered worker for availability under a deadline, mint the agent's room
//! token from its answer, and send the assignment.

use std::time::Duration;

use livekit_api::access_token::{AccessToken, VideoGrants};
use livekit_protocol as proto;
use proto::server_message::Message as ServerMessage;
use tokio::sync::oneshot;

use super::{AgentCommand, LoopbackHandle, PendingAvailability, add_caller};

/// A job handed to a worker.
#[derive(Debug, Clone, PartialEq)]
pub struct DispatchedJob {
    pub job_id: String,
    pub worker_id: String,
    pub participant_identity: String,
    /// From the availability request leaving the server to the answer arriving.
    pub availability_latency: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DispatchError {
    #[error("no registered worker")]
    NoWorker,
    #[error("the worker declined the job")]
    Declined,
    #[error("the worker did not answer availability within {0:?}; the job is lost")]
    AvailabilityTimeout(Duration),
    #[error("the worker connection closed")]
    WorkerGone,
    #[error("could not mint the room token: {0}")]
    Token(String),
}

impl LoopbackHandle {
    /// Dispatches a job for `room_name`, where `participant` (a caller) is
    /// present, to a registered worker — the way LiveKit does on a room join.
    pub async fn dispatch_job(
        &self,
        room_name: &str,
        participant: &str,
    ) -> Result<DispatchedJob, DispatchError> {
        let hub = &self.hub;
        let job_id = format!("AJ_{}", hub.next_id());
        let (answer_tx, answer_rx) = oneshot::channel();
        let (connection, worker_id, agent_name, room_sid) = {
            let mut state = hub.lock();
            let (connection, worker_id, agent_name) = state
                .agents
                .iter()
                .filter_map(|(id, a)| a.worker_id.clone().map(|w| (*id, w, a.agent_name.clone())))
                .min_by_key(|(id, _, _)| *id)
                .ok_or(DispatchError::NoWorker)?;
            let room_sid = add_caller(&mut state, room_name, participant, hub.next_id());
            state.pending.insert(
                job_id.clone(),
                PendingAvailability {
                    sent_at: None,
                    answer: answer_tx,
                },
            );
            (connection, worker_id, agent_name, room_sid)
        };
        let job = proto::Job {
            id: job_id.clone(),
            dispatch_id: format!("AD_{}", hub.next_id()),
            r#type: proto::JobType::JtRoom as i32,
            room: Some(proto::Room {
                sid: room_sid,
                name: room_name.into(),
                ..Default::default()
            }),
            agent_name: agent_name.clone(),
            state: Some(proto::JobState {
                status: proto::JobStatus::JsPending as i32,
                ..Default::default()
            }),
            ..Default::default()
        };
        let request = proto::AvailabilityRequest {
            job: Some(job.clone()),
            resuming: false,
        };
        self.command(connection, AgentCommand::Availability(request))
            .ok_or(DispatchError::WorkerGone)?;

        let timeout = hub.config.availability_timeout;
        let (response, latency) = match tokio::time::timeout(timeout, answer_rx).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => return Err(DispatchError::WorkerGone),
            Err(_) => {
                hub.lock().pending.remove(&job_id);
                hub.record(|r| r.lost_jobs += 1);
                return Err(DispatchError::AvailabilityTimeout(timeout));
            }
        };
        hub.record_history(|r| r.availability_latencies.push(latency));
        if !response.available || response.terminate {
            return Err(DispatchError::Declined);
        }
        let token = self.room_token(room_name, &agent_name, &response)?;
        let url = hub
            .config
            .public_url
            .clone()
            .unwrap_or_else(|| hub.url.clone());
        hub.lock().assignments.insert(job_id.clone(), connection);
        let assignment = proto::JobAssignment {
            job: Some(job),
            url: Some(url),
            token,
        };
        self.command(
            connection,
            AgentCommand::Send(ServerMessage::Assignment(assignment)),
        )
        .ok_or(DispatchError::WorkerGone)?;
        Ok(DispatchedJob {
            job_id,
            worker_id,
            participant_identity: response.participant_identity,
            availability_latency: latency,
        })
    }

    /// A token for `identity` to join `room_name` as a caller (a standard
    /// participant) or, with `agent`, as an agent.
    pub fn participant_token(
        &self,
        room_name: &str,
        identity: &str,
        agent: bool,
    ) -> Result<String, DispatchError> {
        let grants = VideoGrants {
            room_join: true,
            room: room_name.into(),
            can_publish: Some(true),
            can_subscribe: Some(true),
            can_publish_data: Some(true),
            can_update_own_metadata: Some(true),
            agent,
            ..Default::default()
        };
        AccessToken::with_api_key(&self.hub.config.api_key, &self.hub.config.api_secret)
            .with_identity(identity)
            .with_name(identity)
            .with_kind(if agent { "agent" } else { "standard" })
            .with_grants(grants)
            .with_ttl(Duration::from_secs(3600))
            .to_jwt()
            .map_err(|e| DispatchError::Token(e.to_string()))
    }

    fn room_token(
        &self,
        room_name: &str,
        agent_name: &str,
        response: &proto::AvailabilityResponse,
    ) -> Result<String, DispatchError> {
        let mut attributes = response.participant_attributes.clone();
        attributes.insert("lk.agent_name".into(), agent_name.into());
        let grants = VideoGrants {
            room_join: true,
            room: room_name.into(),
            can_publish: Some(true),
            can_subscribe: Some(true),
            can_publish_data: Some(true),
            can_update_own_metadata: Some(true),
            agent: true,
            ..Default::default()
        };
        AccessToken::with_api_key(&self.hub.config.api_key, &self.hub.config.api_secret)
            .with_identity(&response.participant_identity)
            .with_name(&response.participant_name)
            .with_kind("agent")
            .with_attributes(attributes)
            .with_grants(grants)
            .with_ttl(Duration::from_secs(3600))
            .to_jwt()
            .map_err(|e| DispatchError::Token(e.to_string()))
    }
}
