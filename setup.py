"""metrics_assets: a Dagster code location that turns raw usage data into metrics tables."""

from setuptools import find_packages, setup

setup(
    name="metrics_assets",
    version="0.1.0",
    description="Dagster code location: offspot KPIs, event rollups, storage usage, probe popularity, ad hoc lake queries.",
    python_requires=">=3.11",
    packages=find_packages(exclude=["metrics_assets_tests*", "benchmarks*"]),
    include_package_data=True,
    package_data={"metrics_assets": ["**/*.sql", "**/*.yaml", "**/*.mako", "**/*.ini", "probes/demo_data/*.json"]},
    install_requires=[
        "dagster==1.13.*",
        "dagster-webserver==1.13.*",
        "dagster-postgres>=0.29,<0.30",
        "dagster-aws>=0.29,<0.30",
        "sqlalchemy>=2.0,<2.1",  # 2.1 maps postgresql:// to psycopg 3; dagster-postgres needs psycopg2
        "alembic>=1.13",
        "psycopg2-binary>=2.9",
        "adbc-driver-postgresql>=1.0",  # probes: a day of GLAM usage rows out of PostgreSQL as Arrow (binary COPY)
        "duckdb>=1.1",
        "sqlglot>=25",
        "pyathena>=3.0",
        "boto3",
        "pyarrow>=15",
        "pandas>=2.1",
        "pyyaml",
        "fastapi>=0.110",
        "uvicorn>=0.29",
        "plotly>=6,<8",  # the dashboards' charts; plotly.min.js ships inside the wheel
    ],
    extras_require={
        "dev": [
            "pytest>=8",
            "pytest-timeout",
            "moto[server]>=5.0",
            "httpx",
            "schemathesis",
            # linters and type checker (.ci/lint); pinned to a minor release so that a new
            # release's rules or formatting never turn CI red on unchanged code
            "ruff>=0.17,<0.18",
            "mypy>=2.4,<2.5",
            "sqlfluff>=4.5,<4.6",
        ],
    },
    entry_points={
        "console_scripts": [
            "metrics-assets=metrics_assets.cli:main",
            "metrics-query=metrics_assets.queries.cli:main",
        ],
    },
)
