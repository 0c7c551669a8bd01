//! User sign-in: the state the authorization endpoint, the sign-in pages and the device-code
//! endpoint share ([`store`]), and the HTML pages ([`page`]).

pub(crate) mod page;
pub(crate) mod store;

pub(crate) use store::SignInStore;
