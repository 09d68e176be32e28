//! Bulkhead: a cap on concurrent calls per service.
