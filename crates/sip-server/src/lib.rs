//! natter-sip-server: registrar and proxy cores (sans-IO).
