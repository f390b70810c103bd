"""Target tables: where synced rows land (SQLite, PostgreSQL, MariaDB/MySQL) behind one contract."""
