//! HubSpot CRM v3 client: `POST /crm/v3/objects/contacts/search` by email
//! (properties `firstname`, `lastname`, `lifecyclestage`, `hubspot_owner_id`,
//! `company`), the owner's name from `GET /crm/v3/owners/{id}`, and the first
//! open deal associated with the contact from `POST /crm/v3/objects/deals/search`
//! (`associations.contact EQ <id>`, `hs_is_closed EQ false`).
//!
//! Auth is a private-app access token as `Authorization: Bearer`.

use serde::Deserialize;
use serde_json::json;

use super::http::{AttemptBudget, Endpoint, HttpLayer};
use super::model::{CrmRecord, CrmSource, OpenOpportunity};
use super::ratelimit::Vendor;
use super::{Secret, SideEffect};
use crate::resilience::{AttemptCtx, CallError};

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
        let page: SearchPage<ContactProperties> = self
            .http
            .send_json(
                &budget,
                CONTACT_SEARCH,
                self.post("/crm/v3/objects/contacts/search").json(&search),
            )
            .await?;
        let Some(contact) = page.results.into_iter().next() else {
            return Ok(None);
        };
        let props = contact.properties;
        let owner = match props
            .hubspot_owner_id
            .as_deref()
            .filter(|id| !id.is_empty())
        {
            Some(owner_id) => self.owner_name(&budget, owner_id).await?,
            None => None,
        };
        let open_opportunity = self.open_deal(&budget, &contact.id).await?;
        let name = [props.firstname, props.lastname]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        Ok(Some(CrmRecord {
            source: CrmSource::HubSpot,
            id: contact.id,
            name: (!name.is_empty()).then_some(name),
            owner,
            lifecycle_stage: props.lifecyclestage,
            company: props.company,
            open_opportunity,
        }))
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
        match self.http.send_json::<Owner>(budget, OWNER, request).await {
            Ok(owner) => {
                let name = [owner.first_name, owner.last_name]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" ");
                Ok((!name.is_empty()).then_some(name))
            }
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
        let page: SearchPage<DealProperties> = self
            .http
            .send_json(
                budget,
                DEAL_SEARCH,
                self.post("/crm/v3/objects/deals/search").json(&search),
            )
            .await?;
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

    fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http
            .client()
            .post(format!("{}{path}", self.base_url))
            .bearer_auth(self.access_token.expose())
    }
}
