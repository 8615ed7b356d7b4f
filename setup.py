"""What pyproject.toml cannot say: the optional compiled scanner behind `relief-audit verify`.

`optional=True`: where there is no C compiler or no OpenSSL headers the install still succeeds
and verify runs in pure Python, only slower (services/ledger/audit/verify.py picks either).
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("services.ledger.audit._fastscan", ["services/ledger/audit/_fastscan.c"],
                             libraries=["crypto"], extra_compile_args=["-O2"], optional=True)])
