//! Compile-time behaviour of `#[throttled]`: every form compiles into a router, and every error
//! the macro emits has a snapshot (`TRYBUILD=overwrite` regenerates them deliberately).

#[test]
fn forms_compile_and_mistakes_are_compile_errors() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass/*.rs");
    cases.compile_fail("tests/ui/fail/*.rs");
}
