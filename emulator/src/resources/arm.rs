//! The part of Azure Resource Manager that sign-in tools call: the tenants and subscriptions
//! a token's principal can see, and the cloud's endpoint metadata. JSON as ARM answers it.

use serde_json::{Value, json};

use crate::config::{Seed, Subscription};
use crate::resources::access::Caller;

/// The `aud` values Resource Manager accepts, and its first-party application id.
pub(crate) const AUDIENCES: [&str; 5] = [
    "https://management.core.windows.net/",
    "https://management.core.windows.net",
    "https://management.azure.com/",
    "https://management.azure.com",
    "797f4846-ba00-4fd7-ba43-dac1f8f63013",
];

/// A subscription as `GET /subscriptions` lists it.
pub(crate) fn subscription(s: &Subscription) -> Value {
    json!({
        "id": format!("/subscriptions/{}", s.id),
        "authorizationSource": "RoleBased",
        "managedByTenants": s.managed_by_tenants.iter().map(|t| json!({ "tenantId": t })).collect::<Vec<_>>(),
        "subscriptionId": s.id,
        "tenantId": s.tenant,
        "displayName": s.display_name,
        "state": s.state,
        "subscriptionPolicies": {
            "locationPlacementId": "Public_2014-09-01",
            "quotaId": "PayAsYouGo_2014-09-01",
            "spendingLimit": "Off",
        },
    })
}

/// The subscriptions of the token's tenant (and those its tenant manages).
pub(crate) fn subscriptions_of<'s>(seed: &'s Seed, caller: &Caller) -> Vec<&'s Subscription> {
    seed.subscriptions
        .iter()
        .filter(|s| {
            s.tenant.eq_ignore_ascii_case(&caller.tenant_id)
                || s.managed_by_tenants
                    .iter()
                    .any(|t| t.eq_ignore_ascii_case(&caller.tenant_id))
        })
        .collect()
}

/// The tenants the caller belongs to: a user's home tenant and those it is a guest in; an
/// application's or managed identity's own tenant.
pub(crate) fn tenants_of(seed: &Seed, caller: &Caller) -> Vec<Value> {
    let user = caller
        .upn
        .as_deref()
        .and_then(|upn| seed.users.iter().find(|u| u.matches(upn)));
    let ids: Vec<&str> = match user {
        Some(u) => std::iter::once(u.tenant.as_str())
            .chain(u.guest_in.iter().map(String::as_str))
            .collect(),
        None => vec![caller.tenant_id.as_str()],
    };
    seed.tenants
        .iter()
        .filter(|t| ids.iter().any(|id| id.eq_ignore_ascii_case(&t.id)))
        .map(|t| {
            let category = if user.is_some_and(|u| !u.tenant.eq_ignore_ascii_case(&t.id)) {
                "ProjectedBy"
            } else {
                "Home"
            };
            json!({
                "id": format!("/tenants/{}", t.id),
                "tenantId": t.id,
                "countryCode": "US",
                "displayName": t.display_name,
                "domains": t.domains,
                "defaultDomain": t.domains.first(),
                "tenantCategory": category,
                "tenantType": "AAD",
            })
        })
        .collect()
}

/// `GET /metadata/endpoints`: the emulator's cloud. `api-version` 2022-09-01 and later answer
/// the cloud object `az cloud register` reads (name, authentication, resourceManager,
/// suffixes, …); older versions the 2015-01-01 shape (galleryEndpoint, graphEndpoint,
/// portalEndpoint, authentication).
pub(crate) fn metadata(api_version: &str, arm: &str, login: &str) -> Value {
    let authentication = json!({
        "loginEndpoint": format!("{login}/"),
        "audiences": ["https://management.core.windows.net/", "https://management.azure.com/"],
        "tenant": "common",
        "identityProvider": "AAD",
    });
    if api_version < "2022-09-01" {
        return json!({
            "galleryEndpoint": "",
            "graphEndpoint": "https://graph.windows.net/",
            "portalEndpoint": format!("{arm}/"),
            "authentication": authentication,
        });
    }
    json!({
        "name": "EntraEmulator",
        "portal": format!("{arm}/"),
        "authentication": authentication,
        "media": "https://rest.media.azure.net",
        "graphAudience": "https://graph.windows.net/",
        "graph": "https://graph.windows.net/",
        "microsoftGraphResourceId": "https://graph.microsoft.com/",
        "batch": "https://batch.core.windows.net/",
        "resourceManager": format!("{arm}/"),
        "sqlManagement": "https://management.core.windows.net:8443/",
        "activeDirectoryDataLake": "https://datalake.azure.net/",
        "appInsightsResourceId": "https://api.applicationinsights.io",
        "appInsightsTelemetryChannelResourceId": "https://dc.applicationinsights.azure.com/v2/track",
        "attestationResourceId": "https://attest.azure.net",
        "synapseAnalyticsResourceId": "https://dev.azuresynapse.net",
        "logAnalyticsResourceId": "https://api.loganalytics.io",
        "ossrDbmsResourceId": "https://ossrdbms-aad.database.windows.net",
        "suffixes": {
            "acrLoginServer": "azurecr.io",
            "sqlServerHostname": "database.windows.net",
            "keyVaultDns": "vault.azure.net",
            "storage": "core.windows.net",
            "mhsmDns": "managedhsm.azure.net",
            "mysqlServerEndpoint": "mysql.database.azure.com",
            "postgresqlServerEndpoint": "postgres.database.azure.com",
            "mariadbServerEndpoint": "mariadb.database.azure.com",
            "synapseAnalytics": "dev.azuresynapse.net",
            "attestationEndpoint": "attest.azure.net",
            "storageSyncEndpointSuffix": "afs.azure.net",
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_follows_the_api_version() {
        let new = metadata("2022-09-01", "https://arm", "https://login");
        assert_eq!(new["resourceManager"], "https://arm/");
        assert_eq!(new["authentication"]["loginEndpoint"], "https://login/");
        assert_eq!(new["suffixes"]["keyVaultDns"], "vault.azure.net");
        let old = metadata("2019-05-01", "https://arm", "https://login");
        assert_eq!(old["graphEndpoint"], "https://graph.windows.net/");
        assert!(old.get("suffixes").is_none());
    }
}
