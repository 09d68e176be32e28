//! Salesforce REST API client: an OAuth 2.0 client-credentials token from
//! `POST /services/oauth2/token` (cached; refreshed once when a data call
//! answers 401 `INVALID_SESSION_ID`), and SOQL over
//! `GET /services/data/v62.0/query?q=`: the Contact with an email (its account,
//! account owner and first open opportunity), else the unconverted Lead.
//!
//! String literals in SOQL are escaped with [`soql_quote`]. A rejected client
//! (`invalid_client` / `invalid_grant`) is reported as `Status{401}` so every
//! auth failure looks the same to recovery.

use serde::Deserialize;
use serde::de::DeserializeOwned;
use tokio::sync::Mutex;

use super::http::{AttemptBudget, Endpoint, HttpLayer, decode_json};
use super::model::{CrmRecord, CrmSource, OpenOpportunity};
use super::ratelimit::Vendor;
use super::{Secret, SideEffect};
use crate::resilience::{AttemptCtx, CallError};

/// The REST API version voxguard speaks.
pub const API_VERSION: &str = "v62.0";
const TOKEN: Endpoint = Endpoint {
    vendor: Vendor::Salesforce,
    name: "token",
};
const QUERY: Endpoint = Endpoint {
    vendor: Vendor::Salesforce,
    name: "query",
};

pub struct SalesforceClient {
    http: HttpLayer,
    base_url: String,
    client_id: Secret,
    client_secret: Secret,
    session: Mutex<Option<Session>>,
}

#[derive(Clone)]
struct Session {
    access_token: Secret,
    instance_url: String,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: Secret,
    instance_url: Option<String>,
}

#[derive(Deserialize)]
struct QueryResult<R> {
    #[serde(default = "Vec::new")]
    records: Vec<R>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ContactRow {
    id: String,
    name: Option<String>,
    account_id: Option<String>,
    account: Option<AccountRef>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AccountRef {
    name: Option<String>,
    #[serde(rename = "Type")]
    kind: Option<String>,
    owner: Option<NameRef>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct NameRef {
    name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct LeadRow {
    id: String,
    name: Option<String>,
    company: Option<String>,
    status: Option<String>,
    owner: Option<NameRef>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct OpportunityRow {
    name: String,
    stage_name: String,
    amount: Option<f64>,
    close_date: Option<String>,
}

/// Whether a token-endpoint error says the client itself was refused.
fn rejected_client(detail: Option<&str>) -> bool {
    detail.is_some_and(|d| d.ends_with("invalid_client") || d.ends_with("invalid_grant"))
}

/// Quote a value as a SOQL string literal, escaping what SOQL requires.
pub fn soql_quote(value: &str) -> String {
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('\'');
    for c in value.chars() {
        match c {
            '\\' => quoted.push_str("\\\\"),
            '\'' => quoted.push_str("\\'"),
            '"' => quoted.push_str("\\\""),
            '\n' => quoted.push_str("\\n"),
            '\r' => quoted.push_str("\\r"),
            '\t' => quoted.push_str("\\t"),
            '\u{8}' => quoted.push_str("\\b"),
            '\u{c}' => quoted.push_str("\\f"),
            other => quoted.push(other),
        }
    }
    quoted.push('\'');
    quoted
}

impl SalesforceClient {
    /// Reads only (the token request creates no business data).
    pub const SIDE_EFFECT: SideEffect = SideEffect::None;

    /// `base_url` is the org's My Domain login host, e.g. `https://acme.my.salesforce.com`.
    pub fn new(
        http: HttpLayer,
        base_url: impl Into<String>,
        client_id: Secret,
        client_secret: Secret,
    ) -> Self {
        SalesforceClient {
            http,
            base_url: base_url.into().trim_end_matches('/').to_string(),
            client_id,
            client_secret,
            session: Mutex::new(None),
        }
    }

    pub fn side_effect(&self) -> SideEffect {
        Self::SIDE_EFFECT
    }

    /// The Contact with this email (else the open Lead), or `None`.
    pub async fn find_contact(
        &self,
        ctx: &AttemptCtx,
        email: &str,
    ) -> Result<Option<CrmRecord>, CallError> {
        let budget = AttemptBudget::start(ctx);
        let email = soql_quote(email);
        let contacts: QueryResult<ContactRow> = self
            .query(
                &budget,
                &format!(
                    "SELECT Id, Name, AccountId, Account.Name, Account.Type, Account.Owner.Name \
                     FROM Contact WHERE Email = {email} LIMIT 1"
                ),
            )
            .await?;
        if let Some(contact) = contacts.records.into_iter().next() {
            let open_opportunity = match &contact.account_id {
                Some(account_id) => self.open_opportunity(&budget, account_id).await?,
                None => None,
            };
            let account = contact.account;
            return Ok(Some(CrmRecord {
                source: CrmSource::SalesforceContact,
                id: contact.id,
                name: contact.name,
                owner: account
                    .as_ref()
                    .and_then(|a| a.owner.as_ref())
                    .and_then(|o| o.name.clone()),
                lifecycle_stage: account.as_ref().and_then(|a| a.kind.clone()),
                company: account.and_then(|a| a.name),
                open_opportunity,
            }));
        }
        let leads: QueryResult<LeadRow> = self
            .query(
                &budget,
                &format!(
                    "SELECT Id, Name, Company, Status, Owner.Name FROM Lead \
                     WHERE Email = {email} AND IsConverted = false LIMIT 1"
                ),
            )
            .await?;
        Ok(leads.records.into_iter().next().map(|lead| CrmRecord {
            source: CrmSource::SalesforceLead,
            id: lead.id,
            name: lead.name,
            owner: lead.owner.and_then(|o| o.name),
            lifecycle_stage: lead.status,
            company: lead.company,
            open_opportunity: None,
        }))
    }

    async fn open_opportunity(
        &self,
        budget: &AttemptBudget,
        account_id: &str,
    ) -> Result<Option<OpenOpportunity>, CallError> {
        let soql = format!(
            "SELECT Name, StageName, Amount, CloseDate FROM Opportunity \
             WHERE AccountId = {} AND IsClosed = false ORDER BY CloseDate ASC LIMIT 1",
            soql_quote(account_id)
        );
        let rows: QueryResult<OpportunityRow> = self.query(budget, &soql).await?;
        Ok(rows.records.into_iter().next().map(|o| OpenOpportunity {
            name: o.name,
            stage: o.stage_name,
            amount: o.amount,
            close_date: o.close_date,
        }))
    }

    /// Run one SOQL query, refreshing the session once if Salesforce says it is invalid.
    async fn query<R: DeserializeOwned>(
        &self,
        budget: &AttemptBudget,
        soql: &str,
    ) -> Result<QueryResult<R>, CallError> {
        let session = self.session(budget).await?;
        match self.query_with(budget, &session, soql).await {
            Err(CallError::Status { code: 401, .. }) => {
                tracing::info!(
                    service = "salesforce",
                    "session rejected; requesting a new access token"
                );
                self.forget_session(&session).await;
                let fresh = self.session(budget).await?;
                self.query_with(budget, &fresh, soql).await.map_err(|e| match e {
                    CallError::Status { code: 401, .. } => CallError::Status {
                        code: 401,
                        detail: Some(
                            "salesforce rejected a freshly issued access token: check the connected app's \
                             run-as user and its API permissions"
                                .into(),
                        ),
                    },
                    other => other,
                })
            }
            other => other,
        }
    }

    async fn query_with<R: DeserializeOwned>(
        &self,
        budget: &AttemptBudget,
        session: &Session,
        soql: &str,
    ) -> Result<QueryResult<R>, CallError> {
        let request = self
            .http
            .client()
            .get(format!(
                "{}/services/data/{API_VERSION}/query",
                session.instance_url
            ))
            .query(&[("q", soql)])
            .bearer_auth(session.access_token.expose());
        self.http.send_json(budget, QUERY, request).await
    }

    async fn session(&self, budget: &AttemptBudget) -> Result<Session, CallError> {
        let mut cached = self.session.lock().await;
        if let Some(session) = cached.as_ref() {
            return Ok(session.clone());
        }
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", self.client_id.expose()),
            ("client_secret", self.client_secret.expose()),
        ];
        let request = self
            .http
            .client()
            .post(format!("{}/services/oauth2/token", self.base_url))
            .form(&form);
        let reply = match self.http.send(budget, TOKEN, request).await {
            Ok(reply) => reply,
            Err(CallError::Status { code, detail })
                if code == 401 || rejected_client(detail.as_deref()) =>
            {
                return Err(CallError::Status {
                    code: 401,
                    detail: Some(
                        "salesforce rejected the OAuth client credentials: check the connected app's client id \
                         and client secret"
                            .into(),
                    ),
                });
            }
            Err(e) => return Err(e),
        };
        let token: TokenResponse = decode_json(TOKEN, &reply.body)?;
        let session = Session {
            access_token: token.access_token,
            instance_url: token
                .instance_url
                .map(|u| u.trim_end_matches('/').to_string())
                .unwrap_or_else(|| self.base_url.clone()),
        };
        *cached = Some(session.clone());
        Ok(session)
    }

    async fn forget_session(&self, stale: &Session) {
        let mut cached = self.session.lock().await;
        if cached
            .as_ref()
            .is_some_and(|s| s.access_token == stale.access_token)
        {
            *cached = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soql_literals_escape_quotes_and_backslashes() {
        assert_eq!(soql_quote("o'brien@example.com"), r"'o\'brien@example.com'");
        assert_eq!(soql_quote(r"a\' OR Name != '"), r"'a\\\' OR Name != \''");
        assert_eq!(soql_quote("line\nbreak"), r"'line\nbreak'");
    }
}
