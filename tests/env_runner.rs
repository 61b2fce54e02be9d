//! Tests that change this process's environment, so each needs a binary where no other test
//! thread runs (the main runner runs its tests in parallel).

mod support;

mod contract_bridge_env;
