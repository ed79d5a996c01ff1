//! `/mule/names/1` bodies through the codec as request and response: whatever decodes is
//! within the header bounds on chains (enforced while decoding).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mule::message::check_chains;
use mule::protocol::names;

fuzz_target!(|data: &[u8]| {
    let (request, response) = mule_fuzz::wire::<names::Request, names::Response>(
        data,
        names::REQUEST_MAX,
        names::RESPONSE_MAX,
    );
    for body in request.iter().chain(response.iter()) {
        assert_eq!(check_chains(body.chains()), Ok(()));
        // What decodes is what `Chains::new` builds from the same chains.
        assert_eq!(
            names::Chains::new(body.chains().to_vec()).as_ref(),
            Ok(body)
        );
    }
});
