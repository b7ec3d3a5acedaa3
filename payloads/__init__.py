"""What runs at the ends of the link: query/answer messages, the onboard endpoint, the client."""
