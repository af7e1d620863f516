//! Creating operator accounts, for `hotline operator add` and the admin API alike.

use hotline_core::operators::{NewOperator, OperatorError, SipDigest};
use hotline_core::store::Store;
use hotline_sip::Algorithm;

/// What an admin gives for a new operator.
pub struct NewOperatorAccount<'a> {
    pub realm: &'a str,
    pub name: &'a str,
    pub sip_user: &'a str,
    pub display_name: &'a str,
    pub chat_capacity: i64,
    /// The digest algorithm the phone is challenged with.
    pub sip_digest: SipDigest,
    /// The SIP password; only its digest HA1s are stored.
    pub password: &'a str,
}

pub const MIN_SIP_PASSWORD: usize = 8;

/// Stores the operator with the HA1s of the SIP password and returns the new id.
pub async fn create_operator(
    store: &Store,
    form: &NewOperatorAccount<'_>,
) -> Result<i64, OperatorError> {
    if form.password.chars().count() < MIN_SIP_PASSWORD {
        return Err(OperatorError::Invalid(format!(
            "the SIP password must have at least {MIN_SIP_PASSWORD} characters"
        )));
    }
    let ha1 = |alg| hotline_sip::ha1(alg, form.sip_user, form.realm, form.password);
    let op = NewOperator {
        name: form.name,
        display_name: form.display_name,
        sip_user: form.sip_user,
        realm: form.realm,
        ha1_md5: &ha1(Algorithm::Md5),
        ha1_sha256: &ha1(Algorithm::Sha256),
        sip_digest: form.sip_digest,
        chat_capacity: form.chat_capacity,
        created_at_ms: hotline_core::time::unix_ms(),
    };
    store.add_operator(&op).await
}
