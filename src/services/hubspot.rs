//! HubSpot CRM v3 client: `POST /crm/v3/objects/contacts/search` by email
//! (properties `firstname`, `lastname`, `lifecyclestage`, `hubspot_owner_id`,
//! `company`), the owner's name from `GET /crm/v3/owners/{id}`, and the first
//! open deal associated with the contact from `POST /crm/v3/objects/deals/search`
//! (`associations.contact EQ <id>`, `hs_is_closed EQ false`).
//!
//! Auth is a private-app access token as `Authorization: Bearer`.

use serde::Deserialize;
use serde_json::json;

use super::SideEffect;
use super::http::{AttemptBudget, Endpoint, HttpLayer, decode_json};
use super::model::{CrmRecord, CrmSource, OpenOpportunity};
use super::ratelimit::Vendor;
use crate::resilience::{AttemptCtx, CallError};
use crate::secret::Secret;

const CONTACT_SEARCH: Endpoint = Endpoint {
    vendor: Vendor::HubSpot,
    name: "contacts_search",
};
const OWNER: Endpoint = Endpoint {
    vendor: Vendor::HubSpot,
    name: "owners",
};
const DEAL_SEARCH: Endpoint = Endpoint {
    vendor: Vendor::HubSpot,
    name: "deals_search",
};

pub struct HubSpotClient {
    http: HttpLayer,
    base_url: String,
    access_token: Secret,
}

#[derive(Deserialize)]
struct SearchPage<P> {
    #[serde(default = "Vec::new")]
    results: Vec<SearchResult<P>>,
}

#[derive(Deserialize)]
struct SearchResult<P> {
    id: String,
    properties: P,
}

#[derive(Deserialize)]
struct ContactProperties {
    firstname: Option<String>,
    lastname: Option<String>,
    lifecyclestage: Option<String>,
    hubspot_owner_id: Option<String>,
    company: Option<String>,
}

#[derive(Deserialize)]
struct DealProperties {
    dealname: Option<String>,
    dealstage: Option<String>,
    amount: Option<String>,
    closedate: Option<String>,
}

#[derive(Deserialize)]
struct Owner {
    #[serde(rename = "firstName")]
    first_name: Option<String>,
    #[serde(rename = "lastName")]
    last_name: Option<String>,
}

impl HubSpotClient {
    /// Reads only (search is a POST, but it changes nothing).
    pub const SIDE_EFFECT: SideEffect = SideEffect::None;

    /// `base_url` is e.g. `https://api.hubapi.com`.
    pub fn new(http: HttpLayer, base_url: impl Into<String>, access_token: Secret) -> Self {
        HubSpotClient {
            http,
            base_url: base_url.into().trim_end_matches('/').to_string(),
            access_token,
        }
    }

    pub fn side_effect(&self) -> SideEffect {
        Self::SIDE_EFFECT
    }

    /// The contact with this email, or `None`.
    pub async fn find_contact(
        &self,
        ctx: &AttemptCtx,
        email: &str,
    ) -> Result<Option<CrmRecord>, CallError> {
        let budget = AttemptBudget::start(ctx);
        let search = json!({
            "filterGroups": [{"filters": [{"propertyName": "email", "operator": "EQ", "value": email}]}],
            "properties": ["email", "firstname", "lastname", "lifecyclestage", "hubspot_owner_id", "company"],
            "limit": 1
        });
        let reply = self
            .http
            .send(
                &budget,
                CONTACT_SEARCH,
                self.post("/crm/v3/objects/contacts/search").json(&search),
            )
            .await?;
        let Some(contact) = decode_contact_search(&reply.body)? else {
            return Ok(None);
        };
        let mut record = contact.record;
        if let Some(owner_id) = &contact.owner_id {
            record.owner = self.owner_name(&budget, owner_id).await?;
        }
        record.open_opportunity = self.open_deal(&budget, &record.id).await?;
        Ok(Some(record))
    }

    async fn owner_name(
        &self,
        budget: &AttemptBudget,
        owner_id: &str,
    ) -> Result<Option<String>, CallError> {
        let path = format!("/crm/v3/owners/{}", owner_id.trim());
        let request = self
            .http
            .client()
            .get(format!("{}{path}", self.base_url))
            .bearer_auth(self.access_token.expose());
        match self.http.send(budget, OWNER, request).await {
            Ok(reply) => decode_owner_name(&reply.body),
            // An owner who left the portal is a missing name, not a failed lookup.
            Err(CallError::Status { code: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn open_deal(
        &self,
        budget: &AttemptBudget,
        contact_id: &str,
    ) -> Result<Option<OpenOpportunity>, CallError> {
        let search = json!({
            "filterGroups": [{"filters": [
                {"propertyName": "associations.contact", "operator": "EQ", "value": contact_id},
                {"propertyName": "hs_is_closed", "operator": "EQ", "value": "false"}
            ]}],
            "properties": ["dealname", "dealstage", "amount", "closedate"],
            "sorts": [{"propertyName": "closedate", "direction": "ASCENDING"}],
            "limit": 1
        });
        let reply = self
            .http
            .send(
                budget,
                DEAL_SEARCH,
                self.post("/crm/v3/objects/deals/search").json(&search),
            )
            .await?;
        decode_deal_search(&reply.body)
    }

    fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http
            .client()
            .post(format!("{}{path}", self.base_url))
            .bearer_auth(self.access_token.expose())
    }
}

/// A contact search's first result: the record without its owner's name and
/// open deal (each needs a request of its own), and the owner id to look up.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FoundContact {
    pub(crate) record: CrmRecord,
    pub(crate) owner_id: Option<String>,
}

/// The first contact a search answer holds, if any.
pub(crate) fn decode_contact_search(body: &[u8]) -> Result<Option<FoundContact>, CallError> {
    let page: SearchPage<ContactProperties> = decode_json(CONTACT_SEARCH, body)?;
    let Some(contact) = page.results.into_iter().next() else {
        return Ok(None);
    };
    let props = contact.properties;
    let name = [props.firstname, props.lastname]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    Ok(Some(FoundContact {
        record: CrmRecord {
            source: CrmSource::HubSpot,
            id: contact.id,
            name: (!name.is_empty()).then_some(name),
            owner: None,
            lifecycle_stage: props.lifecyclestage,
            company: props.company,
            open_opportunity: None,
        },
        owner_id: props.hubspot_owner_id.filter(|id| !id.is_empty()),
    }))
}

/// An owner's display name, `None` when the owner has no name on file.
pub(crate) fn decode_owner_name(body: &[u8]) -> Result<Option<String>, CallError> {
    let owner: Owner = decode_json(OWNER, body)?;
    let name = [owner.first_name, owner.last_name]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    Ok((!name.is_empty()).then_some(name))
}

/// The first open deal a deal search answer holds, if any.
pub(crate) fn decode_deal_search(body: &[u8]) -> Result<Option<OpenOpportunity>, CallError> {
    let page: SearchPage<DealProperties> = decode_json(DEAL_SEARCH, body)?;
    Ok(page.results.into_iter().next().map(|deal| OpenOpportunity {
        name: deal.properties.dealname.unwrap_or_default(),
        stage: deal.properties.dealstage.unwrap_or_default(),
        amount: deal.properties.amount.and_then(|a| a.parse().ok()),
        close_date: deal
            .properties
            .closedate
            .map(|d| d.chars().take(10).collect()),
    }))
}
