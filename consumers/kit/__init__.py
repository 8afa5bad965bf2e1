"""What a department is written with: life events, person matching, letters due, customer records."""
