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
use tokio::sync::Mutex;

use super::SideEffect;
use super::http::{AttemptBudget, Endpoint, HttpLayer, decode_json};
use super::model::{CrmRecord, CrmSource, OpenOpportunity};
use super::ratelimit::Vendor;
use crate::resilience::{AttemptCtx, CallError};
use crate::secret::Secret;

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

/// An access token and the instance it is valid for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Session {
    pub(crate) access_token: Secret,
    /// Without a trailing `/`.
    pub(crate) instance_url: String,
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
        let contacts = self
            .query(
                &budget,
                &format!(
                    "SELECT Id, Name, AccountId, Account.Name, Account.Type, Account.Owner.Name \
                     FROM Contact WHERE Email = {email} LIMIT 1"
                ),
            )
            .await?;
        if let Some(contact) = decode_contact_query(&contacts)? {
            let mut record = contact.record;
            if let Some(account_id) = &contact.account_id {
                record.open_opportunity = self.open_opportunity(&budget, account_id).await?;
            }
            return Ok(Some(record));
        }
        let leads = self
            .query(
                &budget,
                &format!(
                    "SELECT Id, Name, Company, Status, Owner.Name FROM Lead \
                     WHERE Email = {email} AND IsConverted = false LIMIT 1"
                ),
            )
            .await?;
        decode_lead_query(&leads)
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
        let rows = self.query(budget, &soql).await?;
        decode_opportunity_query(&rows)
    }

    /// Run one SOQL query, refreshing the session once if Salesforce says it is invalid.
    /// Returns the body of the answer.
    async fn query(&self, budget: &AttemptBudget, soql: &str) -> Result<Vec<u8>, CallError> {
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

    async fn query_with(
        &self,
        budget: &AttemptBudget,
        session: &Session,
        soql: &str,
    ) -> Result<Vec<u8>, CallError> {
        let request = self
            .http
            .client()
            .get(format!(
                "{}/services/data/{API_VERSION}/query",
                session.instance_url
            ))
            .query(&[("q", soql)])
            .bearer_auth(session.access_token.expose());
        let reply = self.http.send(budget, QUERY, request).await?;
        Ok(reply.body)
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
        let session = decode_token(&reply.body, &self.base_url)?;
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

/// The session a token answer grants; `login_url` is the instance when the
/// answer names none. A session that could not be used (no token that fits
/// an `Authorization` header, an instance that is not an http(s) URL) is a
/// decode error: cached, it would fail every query without ever being refreshed.
pub(crate) fn decode_token(body: &[u8], login_url: &str) -> Result<Session, CallError> {
    let token: TokenResponse = decode_json(TOKEN, body)?;
    let unusable = |what: &str| CallError::Decode {
        detail: format!("salesforce token: {what}"),
    };
    let access_token = token.access_token.expose();
    if access_token.is_empty()
        || reqwest::header::HeaderValue::from_str(&format!("Bearer {access_token}")).is_err()
    {
        return Err(unusable(UNUSABLE_TOKEN));
    }
    let instance_url = token
        .instance_url
        .map(|u| u.trim_end_matches('/').to_string())
        .unwrap_or_else(|| login_url.to_string());
    let queryable =
        reqwest::Url::parse(&format!("{instance_url}/services/data/{API_VERSION}/query"))
            .is_ok_and(|url| matches!(url.scheme(), "http" | "https"));
    if !queryable {
        return Err(unusable(UNUSABLE_INSTANCE));
    }
    Ok(Session {
        access_token: token.access_token,
        instance_url,
    })
}

/// Why a token answer was refused although it parsed.
pub const UNUSABLE_TOKEN: &str = "access_token is empty or not a valid header value";
pub const UNUSABLE_INSTANCE: &str = "instance_url is not an http(s) URL";

/// A contact query's first row: the record without its open opportunity
/// (that needs a query of its own), and the account to look it up by.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FoundContact {
    pub(crate) record: CrmRecord,
    pub(crate) account_id: Option<String>,
}

/// The first contact a query answer holds, if any.
pub(crate) fn decode_contact_query(body: &[u8]) -> Result<Option<FoundContact>, CallError> {
    let rows: QueryResult<ContactRow> = decode_json(QUERY, body)?;
    Ok(rows.records.into_iter().next().map(|contact| {
        let account = contact.account;
        FoundContact {
            record: CrmRecord {
                source: CrmSource::SalesforceContact,
                id: contact.id,
                name: contact.name,
                owner: account
                    .as_ref()
                    .and_then(|a| a.owner.as_ref())
                    .and_then(|o| o.name.clone()),
                lifecycle_stage: account.as_ref().and_then(|a| a.kind.clone()),
                company: account.and_then(|a| a.name),
                open_opportunity: None,
            },
            account_id: contact.account_id,
        }
    }))
}

/// The first lead a query answer holds, if any.
pub(crate) fn decode_lead_query(body: &[u8]) -> Result<Option<CrmRecord>, CallError> {
    let rows: QueryResult<LeadRow> = decode_json(QUERY, body)?;
    Ok(rows.records.into_iter().next().map(|lead| CrmRecord {
        source: CrmSource::SalesforceLead,
        id: lead.id,
        name: lead.name,
        owner: lead.owner.and_then(|o| o.name),
        lifecycle_stage: lead.status,
        company: lead.company,
        open_opportunity: None,
    }))
}

/// The first open opportunity a query answer holds, if any.
pub(crate) fn decode_opportunity_query(body: &[u8]) -> Result<Option<OpenOpportunity>, CallError> {
    let rows: QueryResult<OpportunityRow> = decode_json(QUERY, body)?;
    Ok(rows.records.into_iter().next().map(|o| OpenOpportunity {
        name: o.name,
        stage: o.stage_name,
        amount: o.amount,
        close_date: o.close_date,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_answer_that_could_not_be_used_is_a_decode_error_not_a_cached_session() {
        let login = "https://acme.my.salesforce.com";
        let session = decode_token(
            br#"{"access_token":"00D!AR8","instance_url":"https://acme.my.salesforce.com/"}"#,
            login,
        )
        .unwrap();
        assert_eq!(session.instance_url, login);
        for (body, why) in [
            (
                &br#"{"access_token":"00D!AR8","instance_url":"hrce.com00000000"}"#[..],
                UNUSABLE_INSTANCE,
            ),
            (br#"{"access_token":""}"#, UNUSABLE_TOKEN),
            (br#"{"access_token":"a\nb"}"#, UNUSABLE_TOKEN),
        ] {
            let error = decode_token(body, login).unwrap_err();
            assert_eq!(
                error,
                CallError::Decode {
                    detail: format!("salesforce token: {why}")
                }
            );
            assert!(!error.is_transient());
        }
    }

    #[test]
    fn soql_literals_escape_quotes_and_backslashes() {
        assert_eq!(soql_quote("o'brien@example.com"), r"'o\'brien@example.com'");
        assert_eq!(soql_quote(r"a\' OR Name != '"), r"'a\\\' OR Name != \''");
        assert_eq!(soql_quote("line\nbreak"), r"'line\nbreak'");
    }
}
