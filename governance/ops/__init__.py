"""Operations endpoints: metrics and readiness."""
