//! The tools a session can call, as the session sees them: a name, the
//! service it runs on and its side-effect class, and one attempt at a time.
//! The composition root (`agent`) binds the names to real clients; a session
//! never knows which CRM answers.

use std::future::Future;
use std::pin::Pin;

use serde_json::Value;

use crate::brain::ToolName;
use crate::recovery::{ToolAnswer, ToolSpec};
use crate::resilience::{AttemptCtx, CallError};

/// One attempt's future. Boxed: tools differ in what they await, and the
/// session holds one attempt at a time.
pub type Attempt = Pin<Box<dyn Future<Output = Result<ToolAnswer<Value>, CallError>> + Send>>;

/// The brain's tools bound to services.
pub trait Tools: Send + Sync {
    /// The service and side-effect class of `tool`, for the `ToolRunner`.
    fn spec(&self, tool: ToolName) -> ToolSpec;

    /// One attempt of `tool` with `args`; the Guard around it decides retries.
    fn attempt(&self, tool: ToolName, args: &Value, ctx: AttemptCtx) -> Attempt;
}
